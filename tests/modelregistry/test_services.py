"""Registry services and shape buckets: independent unknown axes validate on real inputs end to
end, buckets are checked against the model and the budgets when requested, server paths never
reach a stored run."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.models import HardwareTarget
from modelregistry import services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.errors import DomainError, InvalidInput
from opshero.roles import Role
from tests import onnx_models


@pytest.fixture
def approver(world):
    return Actor.for_user(world.a.user(Role.APPROVER))


@pytest.fixture
def detector(world, approver):
    return services.create_model(organization=world.a.org, actor=approver, name="detector")


def _model_file(name="detector.onnx", **kwargs) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, onnx_models.unknown_axes_model(**kwargs).SerializeToString())


def _npz(**arrays) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return SimpleUploadedFile("crops.npz", buffer.getvalue())


def _upload(model, actor, *, version="1.0.0", **kwargs) -> ModelVersion:
    return services.upload_version(
        model=model, actor=actor, artifact=_model_file(), version=version, **kwargs
    )


@pytest.mark.django_db
def test_two_question_mark_axes_with_different_sizes_validate_on_real_inputs(
    detector, approver, settings
):
    settings.VALIDATION_THREADS = 1
    rng = np.random.default_rng(0)
    crops = rng.standard_normal((6, 3, 48, 192)).astype(np.float32)
    version = _upload(
        detector,
        approver,
        inputs_file=_npz(x=crops),
        shape_buckets={"x[0]": [1, 2]},
    )
    assert version.metadata["parameter_count"] == 2 * 3 * 3 * 3 + 2  # Constant-node weights
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = services.start_validation(version=version, target=cpu, actor=approver)
    run = services.execute_validation_run(run_id=run.pk)
    steps = {step["name"]: step for step in run.steps}
    assert steps["inputs"]["status"] == "passed", steps["inputs"]
    shapes = [bucket["shapes"]["x"] for bucket in run.report["inputs"]["buckets"]]
    assert shapes == [[1, 3, 48, 192], [2, 3, 48, 192]]
    assert steps["latency"]["status"] == "passed", steps["latency"]["findings"]
    assert run.status in {ValidationRun.Status.PASSED, ValidationRun.Status.FAILED}
    assert not run.error


@pytest.mark.django_db
def test_synthetic_validation_lists_every_open_axis_with_suggestions(detector, approver):
    version = _upload(detector, approver)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    with pytest.raises(InvalidInput) as excinfo:
        services.start_validation(version=version, target=cpu, actor=approver)
    error = excinfo.value
    assert error.code == "missing_shape_bucket" and error.status == 422
    assert list(error.fields) == ["shape_buckets"]
    assert error.details["suggested_shape_buckets"] == {
        "x[0]": [1],
        "x[2]": [224],
        "x[3]": [224],
    }
    assert [axis["key"] for axis in error.details["open_axes"]] == ["x[0]", "x[2]", "x[3]"]
    run = services.start_validation(
        version=version,
        target=cpu,
        actor=approver,
        shape_buckets={"x[0]": [1], "x[2]": [48], "x[3]": [192]},
    )
    assert run.shape_buckets == {"x[0]": [1], "x[2]": [48], "x[3]": [192]}


@pytest.mark.django_db
def test_the_old_placeholder_form_is_accepted_and_stored_by_axis(detector, approver):
    version = _upload(detector, approver, shape_buckets={"?": [64], "x[0]": 1})
    assert version.shape_buckets == {"x[2]": [64], "x[3]": [64], "x[0]": [1]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"unk__214": [100000000]}, "shape_bucket_too_large"),
        ({"x[0]": [1], "x[2]": [18000], "x[3]": [18000]}, "inputs_too_large"),  # 3.9 GB
        ({"nope": [1]}, "invalid_shape_bucket"),
        ("[1,2]", "invalid_shape_bucket"),
        (5, "invalid_shape_bucket"),
    ],
)
def test_bad_buckets_are_400s_naming_the_field_at_upload_and_validation(
    detector, approver, value, code
):
    with pytest.raises(DomainError) as excinfo:
        _upload(detector, approver, shape_buckets=value)
    assert (excinfo.value.status, excinfo.value.code) == (400, code)
    assert list(excinfo.value.fields) == ["shape_buckets"]
    version = _upload(detector, approver, version="2.0.0")
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    with pytest.raises(DomainError) as excinfo:
        services.start_validation(version=version, target=cpu, actor=approver, shape_buckets=value)
    assert (excinfo.value.status, excinfo.value.code) == (400, code)
    assert not ValidationRun.objects.exists()


@pytest.mark.django_db
def test_budgets_come_from_settings(detector, approver, settings):
    version = _upload(detector, approver)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    settings.VALIDATION_MAX_TENSOR_BYTES = 3 * 64 * 64 * 4 - 1
    spec = {"x[0]": [1], "x[2]": [64], "x[3]": [64]}
    with pytest.raises(DomainError) as excinfo:
        services.start_validation(version=version, target=cpu, actor=approver, shape_buckets=spec)
    assert excinfo.value.code == "inputs_too_large"
    settings.VALIDATION_MAX_TENSOR_BYTES = 3 * 64 * 64 * 4
    settings.VALIDATION_MAX_AXIS_SIZE = 63
    with pytest.raises(DomainError) as excinfo:
        services.start_validation(version=version, target=cpu, actor=approver, shape_buckets=spec)
    assert excinfo.value.code == "shape_bucket_too_large"
    settings.VALIDATION_MAX_AXIS_SIZE = 64
    run = services.start_validation(version=version, target=cpu, actor=approver, shape_buckets=spec)
    assert run.shape_buckets == spec


@pytest.mark.django_db
def test_buckets_that_resize_uploaded_data_are_refused_when_requested(detector, approver):
    version = _upload(detector, approver, inputs_file=_npz(x=np.zeros((2, 3, 48, 192), "f4")))
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    with pytest.raises(DomainError) as excinfo:
        services.start_validation(
            version=version, target=cpu, actor=approver, shape_buckets={"x[2]": [64]}
        )
    assert (excinfo.value.status, excinfo.value.code) == (400, "invalid_shape_bucket")
    assert "48" in excinfo.value.message
    run = services.start_validation(
        version=version, target=cpu, actor=approver, shape_buckets={"x[0]": [4]}
    )
    assert run.shape_buckets == {"x[0]": [4]} and not run.synthetic_inputs


@pytest.mark.django_db
def test_a_run_error_does_not_quote_server_paths(detector, approver, settings, monkeypatch):
    version = _upload(detector, approver, shape_buckets={"x[0]": [1], "x[2]": [8], "x[3]": [8]})
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = services.start_validation(version=version, target=cpu, actor=approver)
    workdir = settings.VALIDATION_WORKDIR / f"run-{run.pk}"

    def broken(**kwargs):
        raise RuntimeError(f"Load model from {kwargs['model_path']} failed")

    monkeypatch.setattr("onnxcheck.pipeline.run_validation", broken)
    with pytest.raises(RuntimeError):
        services.execute_validation_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ValidationRun.Status.ERROR
    assert run.error == "RuntimeError: Load model from stored/model.onnx failed"
    assert str(workdir) not in run.error
