"""Model registry through the API: uploads refused precisely, validation on a real Celery
worker with real onnxruntime, signing, offline verification, key rotation."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.models import HardwareTarget
from modelregistry import services as model_services
from modelregistry import signing_services
from modelregistry.models import MlModel, ModelSignature, ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden
from opshero.models import AuditEvent
from opshero.roles import Role
from tests import onnx_models
from tests.factories import make_member

ROOT = Path(__file__).resolve().parents[3]


def error_of(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return response.json()["error"]


@pytest.fixture
def model(world):
    return model_services.create_model(
        organization=world.a.org,
        actor=Actor.for_user(world.a.user(Role.APPROVER)),
        name="digits",
        latency_budget_ms=50,
    )


def upload(api, model, path: Path, version="1.0.0", inputs: Path | None = None, **extra):
    data = {"version": version, "artifact": SimpleUploadedFile(path.name, path.read_bytes())}
    if inputs is not None:
        data["inputs_file"] = SimpleUploadedFile(inputs.name, inputs.read_bytes())
    data.update(extra)
    return api.post(
        f"/api/v1/orgs/{model.organization.slug}/models/{model.pk}/versions/",
        data,
        format="multipart",
    )


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- uploads ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_upload_reads_the_model_and_stores_it_with_its_digest(world, api_as, model):
    digits = onnx_models.digits_mlp()
    response = upload(
        api_as(world.a.user(Role.APPROVER)), model, digits.model_path, inputs=digits.inputs_path
    )
    assert response.status_code == 201, response.content
    body = response.json()
    import hashlib

    assert body["sha256"] == hashlib.sha256(digits.model_path.read_bytes()).hexdigest()
    assert body["size_bytes"] == digits.model_path.stat().st_size
    meta = body["metadata"]
    assert meta["producer_name"] == "skl2onnx"
    assert meta["inputs"][0]["name"] == "X" and meta["inputs"][0]["dynamic_axes"] == [0]
    ops = {(o["domain"], o["op_type"]) for o in meta["operator_inventory"]}
    assert ("ai.onnx.ml", "ArrayFeatureExtractor") in ops and ("", "ArgMax") in ops
    assert body["status"] == "uploaded" and body["has_inputs"] is True
    version = ModelVersion.objects.get()
    assert Path(version.artifact.path).read_bytes() == digits.model_path.read_bytes()
    assert AuditEvent.objects.filter(verb="model_version.uploaded").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("builder", "code"),
    [
        (onnx_models.write_png, "not_onnx"),
        (onnx_models.write_text, "not_onnx"),
        (onnx_models.write_zero_bytes, "empty_file"),
        (
            lambda p: onnx_models.write_truncated(onnx_models.digits_mlp().model_path, p),
            "truncated",
        ),
        (
            lambda p: onnx_models.write_external_data_model(
                p, location="../../etc/passwd", data_bytes=None
            ),
            "external_data_not_allowed",
        ),
        (onnx_models.write_absurd_input_model, "absurd_dimensions"),
    ],
)
def test_bad_uploads_are_refused_precisely_and_leave_nothing(
    world, api_as, model, tmp_path, builder, code
):
    path = builder(tmp_path / "bad.onnx")
    response = upload(api_as(world.a.user(Role.APPROVER)), model, path)
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert error["code"] == code, error
    assert error["fields"]["artifact"]
    assert not ModelVersion.objects.exists()
    assert stored_files() == []


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_413_before_it_is_stored(world, api_as, model, settings):
    settings.MODEL_UPLOAD_MAX_BYTES = 10_000
    path = onnx_models.digits_mlp().model_path  # ~20 KB
    response = upload(api_as(world.a.user(Role.APPROVER)), model, path)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert not ModelVersion.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_representative_inputs_with_wrong_names_or_dtypes_are_refused(
    world, api_as, model, tmp_path
):
    digits = onnx_models.digits_mlp()
    api = api_as(world.a.user(Role.APPROVER))
    X = np.load(digits.inputs_path)["X"]
    bad_name = tmp_path / "bad_name.npz"
    np.savez(bad_name, images=X)
    response = upload(api, model, digits.model_path, inputs=bad_name)
    assert response.status_code == 422
    assert "X" in error_of(response)["message"] and "images" in error_of(response)["message"]
    bad_dtype = tmp_path / "bad_dtype.npz"
    np.savez(bad_dtype, X=X.astype(np.float64))
    response = upload(api, model, digits.model_path, inputs=bad_dtype)
    assert response.status_code == 422
    assert "float64" in error_of(response)["message"]
    assert "inputs_file" in error_of(response)["fields"]
    assert not ModelVersion.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_duplicate_version_labels_and_bad_labels(world, api_as, model):
    api = api_as(world.a.user(Role.APPROVER))
    path = onnx_models.digits_mlp().model_path
    assert upload(api, model, path, version="1.0.0").status_code == 201
    response = upload(api, model, path, version="1.0.0")
    assert response.status_code == 409 and "version" in error_of(response)["fields"]
    response = upload(api, model, path, version="../1")
    assert response.status_code == 422 and "version" in error_of(response)["fields"]
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_dynamic_axes_without_a_bucket_are_refused_when_validation_is_requested(
    world, api_as, model
):
    api = api_as(world.a.user(Role.APPROVER))
    version_id = upload(api, model, onnx_models.digits_mlp().model_path).json()["id"]
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    url = f"/api/v1/orgs/acme/model-versions/{version_id}/validations/"
    response = api.post(url, {"target": cpu.pk}, format="json")
    assert response.status_code == 422
    error = error_of(response)
    assert "X" in error["message"] and "shape_buckets" in error["fields"]
    assert not ValidationRun.objects.exists()
    assert ModelVersion.objects.get().status == "uploaded"


@pytest.mark.django_db
def test_only_approvers_and_admins_upload(world, api_as, model):
    response = upload(
        api_as(world.a.user(Role.PLANNER)), model, onnx_models.digits_mlp().model_path
    )
    assert response.status_code == 403


# --- validation on a real worker, signing, verification ---------------------------------------


def wait_for(run_id: int, timeout: float = 240) -> ValidationRun:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ValidationRun.objects.get(pk=run_id)
        if run.is_finished:
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {run.status} {run.steps}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_validate_sign_verify_and_refuse_a_tampered_copy(world, api_as, celery_worker, tmp_path):
    approver = world.a.user(Role.APPROVER)
    api = api_as(approver)
    model = model_services.create_model(
        organization=world.a.org,
        actor=Actor.for_user(approver),
        name="digits",
        latency_budget_ms=50,
    )
    digits = onnx_models.digits_mlp()
    version_id = upload(api, model, digits.model_path, inputs=digits.inputs_path).json()["id"]
    nnapi = HardwareTarget.objects.get(builtin_key="nnapi")
    cpu = HardwareTarget.objects.get(builtin_key="cpu")

    # NNAPI cannot run the classifier's tail: ArgMax and ai.onnx.ml:ArrayFeatureExtractor.
    run = api.post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/validations/",
        {"target": nnapi.pk, "shape_buckets": {"X[0]": [1]}},
        format="json",
    ).json()
    nnapi_run = wait_for(run["id"])
    assert nnapi_run.status == "failed", nnapi_run.error
    # On the graph fixed to the bucket, as onnxruntime's usability checker judges it: the two
    # operators NNAPI lacks, and the Cast after them, whose input has no inferable shape.
    unsupported = {
        (u["operator"], u["kind"])
        for s in nnapi_run.report["steps"]
        if s["name"] == "compatibility"
        for u in s["data"]["unsupported"]
    }
    assert unsupported == {
        ("ai.onnx:ArgMax", "operator"),
        ("ai.onnx.ml:ArrayFeatureExtractor", "operator"),
        ("ai.onnx:Cast", "dynamic_input"),
    }
    assert any("operators_supported" in r or "unsupported" in r for r in nnapi_run.reasons)
    assert ModelVersion.objects.get(pk=version_id).status == "rejected"

    # On the CPU target it passes every gate with real accuracy figures.
    run = api.post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/validations/",
        {"target": cpu.pk},
        format="json",
    ).json()
    assert run["number"] == 1
    cpu_run = wait_for(run["id"])
    assert cpu_run.status == "passed", (cpu_run.reasons, cpu_run.error)
    detail = api.get(f"/api/v1/orgs/acme/validation-runs/{cpu_run.pk}/").json()
    steps = {s["name"]: s for s in detail["report"]["steps"]}
    assert [s["name"] for s in detail["steps"]] == [s["name"] for s in detail["report"]["steps"]]
    calibration = steps["calibration"]["data"]
    assert abs(calibration["accuracy"] - digits.test_accuracy) < 1e-6
    assert 0 <= calibration["ece"] <= 0.05
    int8 = steps["quantization_int8"]["data"]["fidelity"]
    assert int8["accuracy_drop_points"] <= 1.0 and int8["top1_agreement"] > 0.97
    bucket = steps["latency"]["data"]["buckets"][0]
    assert 0 < bucket["p50_ms"] <= bucket["p95_ms"] <= bucket["p99_ms"] <= bucket["max_ms"]
    version = ModelVersion.objects.get(pk=version_id)
    assert version.status == "validated"

    # The INT8 variant the run produced becomes a version of its own, derived from this one.
    response = api.post(
        f"/api/v1/orgs/acme/validation-runs/{cpu_run.pk}/variants/",
        {"kind": "int8", "version": "1.0.0-int8"},
        format="json",
    )
    assert response.status_code == 201, response.content
    variant = ModelVersion.objects.get(pk=response.json()["id"])
    assert variant.derived_from_id == version.pk and variant.variant_kind == "int8"
    assert variant.metadata["quantization"].startswith("int8")
    assert variant.size_bytes < version.size_bytes
    assert variant.sha256 == steps["quantization_int8"]["data"]["variant"]["sha256"]

    # Signing: approvers only, not the uploader (four-eyes), and only with a key.
    admin = world.a.user(Role.ADMIN)
    second = make_member(world.a.org, Role.APPROVER).user
    response = api_as(admin).post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/sign/", {}, format="json"
    )
    assert response.status_code == 403
    response = api_as(approver).post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/sign/", {}, format="json"
    )
    assert response.status_code == 403 and error_of(response)["code"] == "four_eyes"
    response = api_as(second).post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/sign/", {}, format="json"
    )
    assert response.status_code == 409 and error_of(response)["code"] == "no_signing_key"
    api_as(admin).post("/api/v1/orgs/acme/signing-keys/", {}, format="json")
    response = api_as(second).post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/sign/", {"valid_days": 30}, format="json"
    )
    assert response.status_code == 201, response.content
    signed = response.json()
    manifest = signed["manifest"]
    assert manifest["release_counter"] == 1 and signed["release_counter"] == 1
    assert manifest["artifact_sha256"] == version.sha256
    # NNAPI failed, so it is not vouched for; CPU is, with its own report digest.
    assert manifest["targets"] == [
        {
            "name": cpu.name,
            "validation_report_sha256": cpu_run.report_digest,
            "documentary": False,
        }
    ]
    assert manifest["input_schema"] == [{"name": "X", "dtype": "float32", "shape": ["dim0", 64]}]
    assert ModelVersion.objects.get(pk=version_id).status == "signed"

    # Offline verification with the published public key.
    artifact = tmp_path / "digits.onnx"
    artifact.write_bytes(
        b"".join(
            api.get(f"/api/v1/orgs/acme/model-versions/{version_id}/artifact/").streaming_content
        )
    )
    envelope = tmp_path / "digits.onnx.sig"
    envelope.write_bytes(
        api.get(f"/api/v1/orgs/acme/model-versions/{version_id}/envelope/").content
    )
    keys = api.get("/api/v1/signing-keys/?org=acme").json()
    key_file = tmp_path / "key.pem"
    key_file.write_text(keys[0]["public_key_pem"])
    verify = [
        sys.executable,
        "-m",
        "protocol.verify",
        str(artifact),
        str(envelope),
        "--public-key",
        str(key_file),
    ]
    ok = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: digits 1.0.0 (release 1")
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    refused = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "REFUSED (digest_mismatch)" in refused.stdout + refused.stderr

    # A signed version keeps its evidence: no re-validation, and the counter only grows.
    response = api.post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/validations/",
        {"target": cpu.pk},
        format="json",
    )
    assert response.status_code == 409 and error_of(response)["code"] == "already_signed"
    assert MlModel.objects.get(pk=model.pk).release_counter == 1


@pytest.mark.django_db
def test_key_rotation_re_signs_live_versions_and_retires_the_old_key(world, tmp_path):
    from protocol import manifest as mf

    version = _signed_version(world)
    old = version.signatures.get()
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    new_key = signing_services.rotate_signing_key(organization=world.a.org, actor=admin)
    old.key.refresh_from_db()
    assert old.key.status == "retired"
    renewed = version.signatures.exclude(pk=old.pk).get()
    assert renewed.key == new_key and renewed.release_counter == old.release_counter
    assert renewed.expires_at == old.expires_at
    trusted = signing_services.trusted_keys(world.a.org)
    artifact = Path(version.artifact.path)
    verified = mf.verify_artifact(
        envelope_bytes=renewed.envelope.encode(),
        trusted_keys=trusted,
        now=renewed.created_at,
        artifact_path=artifact,
    )
    assert verified.manifest.signing_key_id == new_key.key_id
    with pytest.raises(mf.VerificationError) as err:
        mf.verify_artifact(
            envelope_bytes=old.envelope.encode(),
            trusted_keys=trusted,
            now=renewed.created_at,
            artifact_path=artifact,
        )
    assert err.value.code == "retired_key"


def _signed_version(world) -> ModelVersion:
    """A version marked validated by a passed run, signed through the service (no worker)."""
    from django.core.files.base import ContentFile
    from django.utils import timezone

    approver = Actor.for_user(world.a.user(Role.APPROVER))
    model = model_services.create_model(organization=world.a.org, actor=approver, name="m")
    digits = onnx_models.digits_mlp()
    version = model_services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits.onnx"),
        version="1",
    )
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version.status = "validated"
    version.save()
    ValidationRun.objects.create(
        version=version,
        target=cpu,
        number=1,
        status="passed",
        report={
            "passed": True,
            "steps": [{"name": "gates", "data": {"accuracy_measured": True, "gates": []}}],
        },
        report_digest="a" * 64,
        finished_at=timezone.now(),
    )
    signing_services.create_signing_key(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.ADMIN))
    )
    second = Actor.for_user(make_member(world.a.org, Role.APPROVER).user)
    signing_services.sign_version(version=version, actor=second, role=Role.APPROVER)
    version.refresh_from_db()
    return version


@pytest.mark.django_db
def test_signing_rules_are_enforced_by_the_service(world):
    version = _signed_version(world)
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    with pytest.raises(Conflict) as err:
        signing_services.sign_version(version=version, actor=approver, role=Role.APPROVER)
    assert err.value.code == "not_validated"  # already signed
    with pytest.raises(Forbidden):
        signing_services.sign_version(version=version, actor=approver, role=Role.ADMIN)
    assert ModelSignature.objects.count() == 1
    key = version.signatures.get().key
    assert bytes(key.private_key_encrypted)[:4] == b"OHSK"  # encrypted at rest, never PEM
    assert b"PRIVATE KEY" not in bytes(key.private_key_encrypted)


@pytest.mark.django_db
def test_runs_never_stay_running_when_the_worker_dies(world, settings):
    from datetime import timedelta

    from django.utils import timezone

    approver = Actor.for_user(world.a.user(Role.APPROVER))
    model = model_services.create_model(organization=world.a.org, actor=approver, name="m")
    from django.core.files.base import ContentFile

    version = model_services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(onnx_models.digits_mlp().model_path.read_bytes(), name="d.onnx"),
        version="1",
        shape_buckets={"X[0]": [1]},
    )
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = model_services.start_validation(version=version, target=cpu, actor=approver)
    # A worker took it and died: the run is "running" with an old heartbeat.
    ValidationRun.objects.filter(pk=run.pk).update(
        status="running", attempts=1, heartbeat_at=timezone.now() - timedelta(hours=4)
    )
    assert model_services.fail_stale_runs(older_than_seconds=3600) == 1
    run.refresh_from_db()
    assert run.status == "error" and "stopped reporting" in run.error
    version.refresh_from_db()
    assert version.status == "rejected"
    # A redelivered message for a run that died twice is failed, not retried forever.
    run2 = model_services.start_validation(version=version, target=cpu, actor=approver)
    ValidationRun.objects.filter(pk=run2.pk).update(
        status="running", attempts=settings.VALIDATION_MAX_ATTEMPTS
    )
    result = model_services.execute_validation_run(run_id=run2.pk)
    assert result.status == "error" and "giving up" in result.error
    assert result.attempts == settings.VALIDATION_MAX_ATTEMPTS + 1


# --- shape buckets: every malformed value is a 400 naming the field --------------------------

MALFORMED_BUCKETS = [
    5,
    True,
    "[1,2]",
    [1, 2],
    [None],
    [],
    {"x[0]": "a"},
    {"x[0]": []},
    {"x[0]": [0]},
    {"x[0]": [None]},
    {"x[0]": [1.5]},
    {"nope": [1]},
    {"x[1]": [3]},
    {"unk__214": [100000000]},
    {"x[0]": [1], "x[2]": [18000], "x[3]": [18000]},  # one 3.9 GB float32 tensor
    [{"y": [1, 3, 8, 8]}],
]


def _detector_file(tmp_path) -> Path:
    return onnx_models.write_model(onnx_models.unknown_axes_model(), tmp_path / "detector.onnx")


@pytest.mark.django_db
@pytest.mark.parametrize("value", MALFORMED_BUCKETS, ids=repr)
def test_malformed_buckets_at_upload_are_400_naming_the_field(
    world, api_as, model, tmp_path, value
):
    import json

    api = api_as(world.a.user(Role.APPROVER))
    response = upload(api, model, _detector_file(tmp_path), shape_buckets=json.dumps(value))
    assert response.status_code == 400, response.content
    assert "shape_buckets" in error_of(response)["fields"]
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", MALFORMED_BUCKETS, ids=repr)
def test_malformed_buckets_at_validation_are_400_naming_the_field(
    world, api_as, model, tmp_path, value
):
    api = api_as(world.a.user(Role.APPROVER))
    version_id = upload(api, model, _detector_file(tmp_path)).json()["id"]
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    response = api.post(
        f"/api/v1/orgs/acme/model-versions/{version_id}/validations/",
        {"target": cpu.pk, "shape_buckets": value},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "shape_buckets" in error_of(response)["fields"]
    assert not ValidationRun.objects.exists()


@pytest.mark.django_db
def test_the_refusal_lists_every_open_axis_with_suggested_sizes(world, api_as, model, tmp_path):
    api = api_as(world.a.user(Role.APPROVER))
    version_id = upload(api, model, _detector_file(tmp_path)).json()["id"]
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    url = f"/api/v1/orgs/acme/model-versions/{version_id}/validations/"
    response = api.post(url, {"target": cpu.pk}, format="json")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "missing_shape_bucket" and "shape_buckets" in error["fields"]
    suggested = error["details"]["suggested_shape_buckets"]
    assert suggested == {"x[0]": [1], "x[2]": [224], "x[3]": [224]}
    assert [axis["key"] for axis in error["details"]["open_axes"]] == list(suggested)
    # The suggestion, sent back as it is, is accepted; so is the old named form.
    response = api.post(url, {"target": cpu.pk, "shape_buckets": suggested}, format="json")
    assert response.status_code == 202, response.content
    response = api.post(
        url, {"target": cpu.pk, "shape_buckets": {"?": [48], "x[0]": 1}}, format="json"
    )
    assert response.status_code == 202, response.content
    run = ValidationRun.objects.get(pk=response.json()["id"])
    assert run.shape_buckets == {"x[2]": [48], "x[3]": [48], "x[0]": [1]}
