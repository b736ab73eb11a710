"""Isolation probes for the model registry URLs (merged into tests/isolation.py CASES)."""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from opshero.actors import Actor
from opshero.roles import Role
from tests.factories import World
from tests.isolation import Probe


def _objects(world: World) -> dict:
    from fleet.models import HardwareTarget
    from modelregistry import services as model_services
    from modelregistry import signing_services
    from modelregistry.models import ModelVersion, ValidationRun
    from tests import onnx_models

    org = world.a.org
    # Uploaded by the admin, so the approver probes may sign it (four-eyes).
    uploader = Actor.for_user(world.a.user(Role.ADMIN))
    model = model_services.create_model(organization=org, actor=uploader, name="iso-model")
    version = model_services.upload_version(
        model=model,
        actor=uploader,
        artifact=ContentFile(onnx_models.digits_mlp().model_path.read_bytes(), name="d.onnx"),
        version="1.0",
        shape_buckets={"X[0]": [1]},
    )
    ModelVersion.objects.filter(pk=version.pk).update(status="validated")
    run = ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.get(builtin_key="cpu"),
        number=1,
        status="passed",
        report={
            "passed": True,
            "steps": [{"name": "gates", "data": {"accuracy_measured": True, "gates": []}}],
        },
        report_digest="b" * 64,
        finished_at=timezone.now(),
    )
    key = signing_services.create_signing_key(
        organization=org, actor=Actor.for_user(world.a.user(Role.ADMIN))
    )
    version.refresh_from_db()
    return {"model": model, "version": version, "run": run, "key": key, "org": org.slug}


def _state(world: World):
    from modelregistry.models import (
        MlModel,
        ModelSignature,
        ModelVersion,
        SigningKey,
        ValidationRun,
    )

    def state():
        org = world.a.org
        return (
            list(
                MlModel.objects.filter(organization=org).values_list(
                    "pk", "name", "release_counter"
                )
            ),
            list(ModelVersion.objects.filter(model__organization=org).values_list("pk", "status")),
            ValidationRun.objects.filter(version__model__organization=org).count(),
            ModelSignature.objects.filter(version__model__organization=org).count(),
            list(SigningKey.objects.filter(organization=org).values_list("pk", "status")),
        )

    return state


def _probe(
    name: str,
    method: str = "GET",
    data=None,
    status: int = 200,
    role: str = Role.VIEWER,
    json_body: bool = False,
    query: str = "",
    **ids,
) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        objs = _objects(world)
        kwargs = {"org": objs["org"], **{k: objs[v].pk for k, v in ids.items()}}
        if "kind" in ids:
            kwargs["kind"] = "int8"
        payload = data(objs) if callable(data) else data
        return [
            Probe(
                method,
                reverse(name, kwargs=kwargs) + query(objs)
                if callable(query)
                else reverse(name, kwargs=kwargs) + query,
                data=payload,
                insider_role=role,
                insider_status=status,
                state=_state(world) if method != "GET" else None,
                json_body=json_body,
            )
        ]

    return build


def _variant(world: World) -> list[Probe]:
    objs = _objects(world)
    url = reverse(
        "modelregistry:variant-register",
        kwargs={"org": objs["org"], "run_id": objs["run"].pk, "kind": "int8"},
    )
    return [
        Probe(
            "POST",
            url,
            data={},
            insider_role=Role.APPROVER,
            insider_status=302,
            state=_state(world),
        )
    ]


CASES: dict[str, Callable[[World], list[Probe]]] = {
    "modelregistry:models": _probe("modelregistry:models"),
    "modelregistry:model": _probe("modelregistry:model", model_id="model"),
    "modelregistry:version-upload": _probe(
        "modelregistry:version-upload",
        "POST",
        {"version": "2.0"},
        422,
        Role.APPROVER,
        model_id="model",
    ),
    "modelregistry:upload-shape-editor": _probe(
        "modelregistry:upload-shape-editor",
        "POST",
        {},
        200,
        Role.APPROVER,
        model_id="model",
    ),
    "modelregistry:version": _probe("modelregistry:version", version_id="version"),
    "modelregistry:version-validate": _probe(
        "modelregistry:version-validate", "POST", {}, 422, Role.APPROVER, version_id="version"
    ),
    "modelregistry:version-sign": _probe(
        "modelregistry:version-sign", "POST", {}, 302, Role.APPROVER, version_id="version"
    ),
    "modelregistry:version-retire": _probe(
        "modelregistry:version-retire", "POST", {}, 302, Role.APPROVER, version_id="version"
    ),
    "modelregistry:version-artifact": _probe(
        "modelregistry:version-artifact", version_id="version"
    ),
    "modelregistry:version-envelope": _probe(
        "modelregistry:version-envelope", status=404, version_id="version"
    ),
    "modelregistry:version-compare": _probe(
        "modelregistry:version-compare",
        query=lambda o: f"?a={o['version'].pk}&b={o['version'].pk}",
    ),
    "modelregistry:run-progress": _probe("modelregistry:run-progress", run_id="run"),
    "modelregistry:run-review": _probe(
        "modelregistry:run-review",
        "POST",
        {"decision": "accept", "reason": "checked on the device"},
        422,  # the probe's run has passed: nothing to review, shown on the form
        Role.APPROVER,
        run_id="run",
    ),
    "modelregistry:variant-register": _variant,
    "modelregistry:signing-keys": _probe(
        "modelregistry:signing-keys", "POST", {"action": "rotate"}, 302, Role.ADMIN
    ),
    "modelregistry:signing-key-pem": _probe("modelregistry:signing-key-pem", key_pk="key"),
    "api-models": _probe("api-models"),
    "api-model": _probe(
        "api-model", "PATCH", {"max_ece": 0.1}, 200, Role.APPROVER, True, model_id="model"
    ),
    "api-model-versions": _probe("api-model-versions", model_id="model"),
    "api-model-version": _probe("api-model-version", version_id="version"),
    "api-model-version-validate": _probe(
        "api-model-version-validate",
        "POST",
        lambda o: {"target": o["run"].target_id},
        202,
        Role.APPROVER,
        True,
        version_id="version",
    ),
    "api-model-version-sign": _probe(
        "api-model-version-sign", "POST", {}, 201, Role.APPROVER, True, version_id="version"
    ),
    "api-model-version-artifact": _probe("api-model-version-artifact", version_id="version"),
    "api-model-version-envelope": _probe(
        "api-model-version-envelope", status=404, version_id="version"
    ),
    "api-validation-run": _probe("api-validation-run", run_id="run"),
    "api-validation-run-review": _probe(
        "api-validation-run-review",
        "POST",
        {"decision": "accept", "reason": "checked on the device"},
        409,  # the probe's run has passed: nothing to review
        Role.APPROVER,
        True,
        run_id="run",
    ),
    "api-validation-run-variants": _probe(
        "api-validation-run-variants",
        "POST",
        {"kind": "int8", "version": "1.0-int8"},
        422,
        Role.APPROVER,
        True,
        run_id="run",
    ),
    "api-signing-keys": _probe("api-signing-keys"),
    "api-signing-keys-rotate": _probe("api-signing-keys-rotate", "POST", {}, 201, Role.ADMIN, True),
    "api-signing-key-retire": _probe(
        "api-signing-key-retire", "POST", {}, 200, Role.ADMIN, True, key_id="key"
    ),
}
