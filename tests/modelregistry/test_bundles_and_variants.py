"""Bundles and variants end to end (issue 10): a model with external weights uploads, validates
on a real worker and signs as a bundle whose every file the manifest lists; hostile archives and
single files that point outside themselves are refused without revealing anything about the
server; an INT8 and an FP16 variant are registered, validated as themselves against their parent
and signed by a second approver; a variant calibrated on synthetic inputs needs an audited
override."""

from __future__ import annotations

import io
import stat
import tarfile
import time
import zipfile
from pathlib import Path

import onnx
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import numpy_helper

from fleet.models import HardwareTarget
from modelregistry import services, signing_services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from protocol import manifest as mf
from protocol.bundles import pack_bundle, unpack_bundle
from tests import onnx_models
from tests.factories import make_member

DIGITS_CONTRACT = {
    "labels": [str(n) for n in range(10)],
    "score_output": "probabilities",
    "scores": "probabilities",
    "preprocessing": {"layout": "NC", "scale": 1.0, "mean": [], "std": [], "color_order": "none"},
    "intended_use": "tests",
}


@pytest.fixture
def uploader(world):
    return Actor.for_user(world.a.user(Role.APPROVER))


@pytest.fixture
def second(world):
    return Actor.for_user(make_member(world.a.org, Role.APPROVER).user)


def _wait(run_id: int, timeout: float = 240) -> ValidationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ValidationRun.objects.get(pk=run_id)
        if run.is_measured:
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} did not finish: {ValidationRun.objects.get(pk=run_id)}")


def _external_digits(directory: Path) -> Path:
    """The digits MLP with every weight in one external file ``weights.bin``."""
    model = onnx.load(onnx_models.digits_mlp().model_path)
    # skl2onnx writes typed fields (float_data); only raw_data tensors move to external files.
    for index, tensor in enumerate(model.graph.initializer):
        raw = numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name)
        model.graph.initializer[index].CopyFrom(raw)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "digits.onnx"
    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=1024,  # small tensors (Reshape shapes) stay inline, as exporters do
    )
    assert (directory / "weights.bin").stat().st_size > 10_000
    return path


def _bundle_upload(tmp_path: Path, name: str = "digits-bundle.zip") -> SimpleUploadedFile:
    model_path = _external_digits(tmp_path / "src")
    archive = pack_bundle(
        {"digits.onnx": model_path, "weights.bin": model_path.parent / "weights.bin"},
        tmp_path / name,
    )
    return SimpleUploadedFile(name, archive.read_bytes())


def _npz() -> SimpleUploadedFile:
    return SimpleUploadedFile("inputs.npz", onnx_models.digits_mlp().inputs_path.read_bytes())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_model_with_external_weights_uploads_validates_and_signs_as_a_bundle(
    world, uploader, second, celery_worker, tmp_path
):
    model = services.create_model(organization=world.a.org, actor=uploader, name="digits-ext")
    version = services.upload_version(
        model=model,
        actor=uploader,
        artifact=_bundle_upload(tmp_path),
        version="1.0.0",
        inputs_file=_npz(),
        io_contract=DIGITS_CONTRACT,
    )
    assert version.artifact_kind == "bundle"
    assert version.entrypoint == "digits.onnx"
    assert sorted(f["path"] for f in version.files) == ["digits.onnx", "weights.bin"]
    assert version.metadata["external_data_files"]  # inspected with its weights
    assert not any(Path(settings.VALIDATION_WORKDIR).glob("bundle-*"))  # nothing left behind

    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = services.start_validation(version=version, target=cpu, actor=uploader)
    run = _wait(run.pk)
    assert run.status == "passed", (run.reasons, run.error)
    signing_services.create_signing_key(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.ADMIN))
    )
    version.refresh_from_db()
    signature = signing_services.sign_version(version=version, actor=second, role=Role.APPROVER)
    data = signature.manifest
    assert data["artifact_kind"] == "bundle" and data["entrypoint"] == "digits.onnx"
    assert {f["path"]: f["sha256"] for f in data["files"]} == {
        f["path"]: f["sha256"] for f in version.files
    }
    assert data["artifact_sha256"] == version.sha256

    # A gateway's view: the archive as downloaded, unpacked, every file verified.
    archive = tmp_path / "downloaded.zip"
    with version.artifact.open("rb") as source:
        archive.write_bytes(source.read())
    unpacked = tmp_path / "unpacked"
    unpack_bundle(archive, unpacked)
    trusted = signing_services.trusted_keys(world.a.org)
    verified = mf.verify_artifact(
        envelope_bytes=signature.envelope.encode(),
        trusted_keys=trusted,
        now=signature.created_at,
        artifact_path=unpacked,
    )
    assert verified.manifest.version == "1.0.0"
    weights = unpacked / "weights.bin"
    raw = bytearray(weights.read_bytes())
    raw[100] ^= 0x01
    weights.write_bytes(bytes(raw))
    with pytest.raises(mf.VerificationError) as refused:
        mf.verify_artifact(
            envelope_bytes=signature.envelope.encode(),
            trusted_keys=trusted,
            now=signature.created_at,
            artifact_path=unpacked,
        )
    assert refused.value.code == "digest_mismatch"


def _zip_with(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _tar_with_traversal(model_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("model.onnx", model_bytes), ("../../evil.bin", b"x" * 16)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.django_db
def test_hostile_bundles_are_refused_and_nothing_is_stored(world, uploader, tmp_path, settings):
    model = services.create_model(organization=world.a.org, actor=uploader, name="m")
    model_bytes = onnx_models.digits_mlp().model_path.read_bytes()
    settings.MODEL_UPLOAD_MAX_BYTES = 20 * 1024 * 1024
    cases = {
        "traversal.tar": (_tar_with_traversal(model_bytes), "bundle_traversal"),
        "link.zip": (_zip_with({"model.onnx": model_bytes}, symlink="weights.bin"), "bundle_link"),
        # 50 MB of zeros compresses to ~50 KB: over the unpacked limit and the ratio.
        "bomb.zip": (
            _zip_with({"model.onnx": model_bytes, "weights.bin": b"\0" * (50 * 1024 * 1024)}),
            None,
        ),
    }
    for name, (data, code) in cases.items():
        with pytest.raises(InvalidInput) as refused:
            services.upload_version(
                model=model,
                actor=uploader,
                artifact=SimpleUploadedFile(name, data),
                version="1",
            )
        if code:
            assert refused.value.code == code, (name, refused.value.message)
        else:
            assert refused.value.code in {"bundle_too_large", "bundle_ratio"}, refused.value.code
        assert str(tmp_path) not in refused.value.message
        assert settings.VALIDATION_WORKDIR.as_posix() not in refused.value.message
    assert not ModelVersion.objects.exists()
    assert not any(Path(settings.VALIDATION_WORKDIR).glob("bundle-*"))


@pytest.mark.django_db
def test_a_single_onnx_pointing_outside_itself_is_refused_without_an_oracle(
    world, uploader, tmp_path
):
    """Whether the named file exists next to the server's temp file must not change the answer."""
    model = services.create_model(organization=world.a.org, actor=uploader, name="m")
    messages = []
    for location in ("passwd", "surely-missing.bin"):
        path = onnx_models.write_external_data_model(
            tmp_path / f"{location}.onnx", location=location, data_bytes=b"\0" * 16
        )
        with pytest.raises(InvalidInput) as refused:
            services.upload_version(
                model=model,
                actor=uploader,
                artifact=SimpleUploadedFile("model.onnx", path.read_bytes()),
                version="1",
            )
        assert refused.value.code == "external_data_not_allowed"
        messages.append(refused.value.message.replace(location, "<loc>"))
    assert messages[0] == messages[1]
    assert "bundle" in messages[0]


def _run_and_wait(version, target, actor) -> ValidationRun:
    return _wait(services.start_validation(version=version, target=target, actor=actor).pk)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_int8_and_fp16_variants_validate_as_themselves_and_a_second_approver_signs(
    world, uploader, second, celery_worker
):
    digits = onnx_models.digits_mlp()
    model = services.create_model(organization=world.a.org, actor=uploader, name="digits")
    parent = services.upload_version(
        model=model,
        actor=uploader,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits.onnx"),
        version="1.0.0",
        inputs_file=_npz(),
        io_contract=DIGITS_CONTRACT,
    )
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = _run_and_wait(parent, cpu, uploader)
    assert run.status == "passed", (run.reasons, run.error)

    signing_services.create_signing_key(
        organization=world.a.org, actor=Actor.for_user(world.a.user(Role.ADMIN))
    )
    for kind in ("int8", "fp16"):
        produced = services.run_variant(run, kind)
        assert produced is not None and produced.get("registrable") is True, produced
        variant = services.register_variant(
            run=run, kind=kind, actor=uploader, version=f"1.0.0-{kind}"
        )
        assert variant.variant_kind == kind and variant.derived_from_id == parent.pk
        assert variant.io_contract == parent.io_contract  # inherited
        assert variant.inputs_file  # the parent's inputs come with it
        assert variant.file_name == f"digits.{kind}.onnx"
        variant_run = _run_and_wait(variant, cpu, uploader)
        assert variant_run.status == "passed", (kind, variant_run.reasons, variant_run.error)
        steps = {step["name"]: step for step in variant_run.report["steps"]}
        assert steps["quantization_int8"]["status"] == "skipped"  # never quantized again
        assert steps["quantization_fp16"]["status"] == "skipped"
        agreement = steps["parent_agreement"]["data"]
        assert agreement["top1_agreement"] >= 0.99
        assert agreement["sqnr_db"] >= 20
        gates = {g["name"]: g["status"] for g in steps["gates"]["data"]["gates"]}
        assert gates["variant_agreement"] == "passed" and gates["variant_sqnr"] == "passed"
        variant.refresh_from_db()
        signature = signing_services.sign_version(version=variant, actor=second, role=Role.APPROVER)
        assert signature.manifest["variant"] == {
            "kind": kind,
            "parent_version": "1.0.0",
            "parent_sha256": parent.sha256,
        }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_variant_calibrated_on_synthetic_inputs_needs_an_audited_override(
    world, uploader, celery_worker
):
    digits = onnx_models.digits_mlp()
    model = services.create_model(organization=world.a.org, actor=uploader, name="digits")
    parent = services.upload_version(
        model=model,
        actor=uploader,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits.onnx"),
        version="1.0.0",
        shape_buckets={"X[0]": [1]},
    )
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = _run_and_wait(parent, cpu, uploader)
    assert run.synthetic_inputs
    produced = services.run_variant(run, "int8")
    assert produced is not None and produced.get("registrable") is False
    with pytest.raises(Conflict) as refused:
        services.register_variant(run=run, kind="int8", actor=uploader, version="1.0.0-int8")
    assert refused.value.code == "variant_not_registrable"
    assert not ModelVersion.objects.filter(variant_kind="int8").exists()
    variant = services.register_variant(
        run=run,
        kind="int8",
        actor=uploader,
        version="1.0.0-int8",
        override_reason="size test on the bench only",
    )
    assert variant.registration_override.startswith("size test on the bench only")
    event = AuditEvent.objects.get(verb="model_version.uploaded", data__variant="int8")
    assert event.data["registration_override"].startswith("size test on the bench only")
