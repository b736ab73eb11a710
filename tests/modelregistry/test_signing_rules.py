"""Signing rules of issue 10: evidence per (version, target), manifest targets each with its own
report digest, four-eyes (and the audited single-approver relaxation), the accuracy waiver, the
I/O contract checked at upload and signed, the user's file name stored and signed."""

from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fleet.models import HardwareTarget
from modelregistry import services, signing_services
from modelregistry.models import ModelSignature, ModelVersion, ValidationRun
from opshero import services as platform_services
from opshero.actors import Actor
from opshero.errors import Forbidden, InvalidInput
from opshero.models import AuditEvent, Membership
from opshero.roles import Role
from tests import onnx_models
from tests.factories import make_member

DIGIT_LABELS = [str(n) for n in range(10)]
CONTRACT = {
    "labels": DIGIT_LABELS,
    "score_output": "probabilities",
    "scores": "probabilities",
    "preprocessing": {
        "layout": "NC",
        "scale": 0.0625,
        "mean": [],
        "std": [],
        "color_order": "none",
    },
    "intended_use": "8x8 handwritten digits (demo)",
}


@pytest.fixture
def uploader(world):
    return Actor.for_user(world.a.user(Role.APPROVER))


@pytest.fixture
def second_approver(world):
    return Actor.for_user(make_member(world.a.org, Role.APPROVER).user)


@pytest.fixture
def key(world):
    return signing_services.create_signing_key(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.ADMIN))
    )


def _digits_version(world, actor, *, contract=CONTRACT, version="1.0.0", name="digits"):
    model = services.create_model(organization=world.a.org, actor=actor, name=name)
    digits = onnx_models.digits_mlp()
    return services.upload_version(
        model=model,
        actor=actor,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits_mlp.onnx"),
        version=version,
        io_contract=contract,
    )


def _finished_run(version, target, *, status, digest, accuracy_measured, number=1):
    gates = {
        "name": "gates",
        "status": status,
        "data": {
            "gates": [
                {
                    "name": "min_accuracy",
                    "status": "passed" if accuracy_measured else "not_evaluated",
                    "reasons": [] if accuracy_measured else ["no labelled inputs"],
                }
            ],
            "accuracy_measured": accuracy_measured,
        },
    }
    return ValidationRun.objects.create(
        version=version,
        target=target,
        number=number,
        status=status,
        report={"passed": status == "passed", "steps": [gates]},
        report_digest=digest,
        finished_at=timezone.now(),
    )


def _validated(version, runs):
    for target, status, digest, measured in runs:
        _finished_run(version, target, status=status, digest=digest, accuracy_measured=measured)
    version.status = ModelVersion.Status.VALIDATING
    version.save()
    services._finish_version_status(version)
    version.refresh_from_db()
    return version


@pytest.mark.django_db
def test_one_failing_extra_target_does_not_reject_the_version_and_only_passed_targets_are_signed(
    world, uploader, second_approver, key
):
    version = _digits_version(world, uploader)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    nnapi = HardwareTarget.objects.get(builtin_key="nnapi")
    version = _validated(
        version, [(cpu, "passed", "c" * 64, True), (nnapi, "failed", "d" * 64, True)]
    )
    assert version.status == ModelVersion.Status.VALIDATED  # was rejected: the newest run failed

    signature = signing_services.sign_version(
        version=version, actor=second_approver, role=Role.APPROVER
    )
    targets = signature.manifest["targets"]
    assert targets == [
        {"name": cpu.name, "validation_report_sha256": "c" * 64, "documentary": False}
    ]
    assert signature.manifest["files"] == [
        {"path": "digits_mlp.onnx", "sha256": version.sha256, "size": version.size_bytes}
    ]


@pytest.mark.django_db
def test_a_version_no_target_passed_is_rejected(world, uploader):
    version = _digits_version(world, uploader)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version = _validated(version, [(cpu, "failed", "c" * 64, True)])
    assert version.status == ModelVersion.Status.REJECTED


@pytest.mark.django_db
def test_the_uploader_cannot_sign_a_second_approver_can(world, uploader, second_approver, key):
    version = _digits_version(world, uploader)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version = _validated(version, [(cpu, "passed", "c" * 64, True)])
    with pytest.raises(Forbidden) as refused:
        signing_services.sign_version(version=version, actor=uploader, role=Role.APPROVER)
    assert refused.value.code == "four_eyes"
    assert not ModelSignature.objects.exists()
    signature = signing_services.sign_version(
        version=version, actor=second_approver, role=Role.APPROVER
    )
    assert signature.four_eyes_relaxed is False
    assert signature.manifest["four_eyes"] == "enforced"


@pytest.mark.django_db
def test_single_approver_mode_is_audited_and_badges_the_signature(world, uploader, key):
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    with pytest.raises(InvalidInput):
        platform_services.set_single_approver(
            organization=world.a.org, enabled=True, reason=" ", actor=admin
        )
    platform_services.set_single_approver(
        organization=world.a.org, enabled=True, reason="one technical manager", actor=admin
    )
    event = AuditEvent.objects.get(verb="organization.approval_policy_changed")
    assert event.data["single_approver"] is True
    assert event.data["reason"] == "one technical manager"

    version = _digits_version(world, uploader)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version = _validated(version, [(cpu, "passed", "c" * 64, True)])
    world.a.org.refresh_from_db()
    signature = signing_services.sign_version(version=version, actor=uploader, role=Role.APPROVER)
    assert signature.four_eyes_relaxed is True
    assert signature.manifest["four_eyes"] == "relaxed"
    signed = AuditEvent.objects.get(verb="model_version.signed")
    assert signed.data["four_eyes"] == "relaxed"


@pytest.mark.django_db
def test_signing_without_measured_accuracy_needs_an_audited_waiver(
    world, uploader, second_approver, key
):
    version = _digits_version(world, uploader)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version = _validated(version, [(cpu, "passed", "c" * 64, False)])
    with pytest.raises(InvalidInput) as refused:
        signing_services.sign_version(version=version, actor=second_approver, role=Role.APPROVER)
    assert refused.value.code == "accuracy_waiver_required"
    signature = signing_services.sign_version(
        version=version,
        actor=second_approver,
        role=Role.APPROVER,
        accuracy_waiver="pilot on one dock; labels come from the first week's review",
    )
    assert signature.accuracy_waiver.startswith("pilot on one dock")
    assert signature.manifest["accuracy_waiver"]["reason"].startswith("pilot on one dock")
    assert signature.manifest["accuracy_waiver"]["approved_by"] == second_approver.user.username
    audit = AuditEvent.objects.get(verb="model_version.signed")
    assert audit.data["accuracy_waiver"].startswith("pilot on one dock")


@pytest.mark.django_db
def test_the_io_contract_is_checked_against_the_graph_stored_and_signed(
    world, uploader, second_approver, key
):
    with pytest.raises(InvalidInput) as refused:
        _digits_version(world, uploader, contract={**CONTRACT, "labels": ["cat", "dog", "bird"]})
    assert refused.value.code == "io_contract_mismatch"
    assert "3" in refused.value.message and "10" in refused.value.message
    assert not ModelVersion.objects.exists()

    version = _digits_version(world, uploader, name="digits-2")
    assert version.io_contract["labels"] == DIGIT_LABELS
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    version = _validated(version, [(cpu, "passed", "c" * 64, True)])
    signature = signing_services.sign_version(
        version=version, actor=second_approver, role=Role.APPROVER
    )
    assert signature.manifest["io_contract"]["labels"] == DIGIT_LABELS
    assert signature.manifest["io_contract"]["score_output"] == "probabilities"


@pytest.mark.django_db
def test_a_malformed_io_contract_is_a_400_on_the_api(world, api_as):
    client = api_as(world.a.user(Role.APPROVER))
    model = services.create_model(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.APPROVER)), name="m"
    )
    digits = onnx_models.digits_mlp()
    response = client.post(
        f"/api/v1/orgs/acme/models/{model.pk}/versions/",
        {
            "version": "1",
            "artifact": SimpleUploadedFile("my-digits.onnx", digits.model_path.read_bytes()),
            "io_contract": json.dumps({"labels": DIGIT_LABELS, "scores": "maybe"}),
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_io_contract"


@pytest.mark.django_db
def test_the_stored_and_signed_file_name_is_the_users(world, api_as):
    """Uploads arrive as temporary files (tmpXXXX.upload.onnx); that name must not leak."""
    client = api_as(world.a.user(Role.APPROVER))
    model = services.create_model(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.APPROVER)), name="m"
    )
    digits = onnx_models.digits_mlp()
    response = client.post(
        f"/api/v1/orgs/acme/models/{model.pk}/versions/",
        {
            "version": "1",
            "artifact": SimpleUploadedFile("dock-digits v2.onnx", digits.model_path.read_bytes()),
            "io_contract": json.dumps(CONTRACT),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    version = ModelVersion.objects.get(pk=response.json()["id"])
    assert version.file_name == "dock-digits v2.onnx"
    assert version.metadata["file_name"] == "dock-digits v2.onnx"
    assert version.entrypoint == "dock-digits v2.onnx"
    assert "upload" not in version.metadata["file_name"]
    download = client.get(f"/api/v1/orgs/acme/model-versions/{version.pk}/artifact/")
    assert download.status_code == 200
    assert 'filename="m-1-dock-digits_v2.onnx"' in download["Content-Disposition"]


@pytest.mark.django_db
def test_approver_count_and_policy_form_on_the_members_page(world, login):
    client = login(world.a.user(Role.ADMIN))
    page = client.get("/o/acme/members/")
    assert b"Four-eyes enforced" in page.content
    response = client.post(
        "/o/acme/members/approval-policy/", {"single_approver": "on", "reason": ""}
    )
    assert response.status_code == 422
    world.a.org.refresh_from_db()
    assert world.a.org.single_approver is False
    response = client.post(
        "/o/acme/members/approval-policy/", {"single_approver": "on", "reason": "one approver"}
    )
    assert response.status_code == 302
    world.a.org.refresh_from_db()
    assert world.a.org.single_approver is True
    assert Membership.objects.filter(organization=world.a.org, role=Role.APPROVER).count() == 1
    # an approver (not an admin) may not change it
    approver_client = login(world.a.user(Role.APPROVER))
    assert (
        approver_client.post(
            "/o/acme/members/approval-policy/", {"single_approver": "", "reason": "x"}
        ).status_code
        == 403
    )
