"""Variant files of superseded validation runs are deleted from storage, once.

Runs are built through the services and finished with ``transition_run`` carrying a report laid
out as ``services._keep_variants`` leaves it (``steps[i].data.variant.stored_name`` naming a
real file in ``default_storage``); one test produces its variants with real validation runs.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from fleet.models import HardwareTarget
from modelregistry import cleanup, services
from modelregistry.models import ValidationRun
from opshero.actors import Actor
from opshero.celery import app
from opshero.errors import InvalidInput
from opshero.roles import Role
from tests import onnx_models
from tests.factories import make_target

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def approver(world):
    return Actor.for_user(world.a.user(Role.APPROVER))


@pytest.fixture
def version(world, approver):
    model = services.create_model(organization=world.a.org, actor=approver, name="tiny")
    return services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(onnx_models.tiny_model().SerializeToString(), name="tiny.onnx"),
        version="1.0.0",
    )


@pytest.fixture
def cpu():
    return HardwareTarget.objects.get(builtin_key="cpu")


def _stored_variant(version, kind: str) -> str:
    org = version.model.organization_id
    return default_storage.save(
        f"variants/{org}/{kind}.onnx", ContentFile(f"variant {kind}".encode())
    )


def _run(version, target, approver, *, finish: str | None = ValidationRun.Status.PASSED):
    """A run of ``version`` on ``target`` with an INT8 and an FP16 variant in storage."""
    run = services.start_validation(version=version, target=target, actor=approver)
    if finish is None:
        return run
    names = [_stored_variant(version, "int8"), _stored_variant(version, "fp16")]
    report = {
        "steps": [
            {"name": "integrity", "status": "passed", "data": {}},
            *(
                {
                    "name": f"quantize_{kind}",
                    "status": "passed",
                    "data": {"variant": {"kind": kind, "path": "", "stored_name": name}},
                }
                for kind, name in zip(("int8", "fp16"), names, strict=True)
            ),
        ],
        "digest": "d" * 64,
    }
    services.transition_run(run=run, to=ValidationRun.Status.RUNNING)
    return services.transition_run(
        run=run, to=finish, report=report, report_digest="d" * 64, finished_at=timezone.now()
    )


def _stored_names(run) -> list[str]:
    return [
        step["data"]["variant"]["stored_name"]
        for step in run.report["steps"]
        if "variant" in step["data"]
    ]


def test_a_newer_finished_run_supersedes_the_older_one_and_a_second_call_deletes_nothing(
    version, cpu, approver
):
    older = _run(version, cpu, approver)
    newer = _run(version, cpu, approver, finish=ValidationRun.Status.FAILED)
    older_files, newer_files = _stored_names(older), _stored_names(newer)
    assert all(default_storage.exists(name) for name in older_files + newer_files)

    assert cleanup.delete_superseded_variant_files(now=NOW) == 2

    assert not any(default_storage.exists(name) for name in older_files)
    assert all(default_storage.exists(name) for name in newer_files)
    older.refresh_from_db()
    variants = [step["data"]["variant"] for step in older.report["steps"][1:]]
    assert [v["stored_name"] for v in variants] == ["", ""]
    assert {v["deleted_at"] for v in variants} == {NOW.isoformat()}
    assert {v["deleted_reason"] for v in variants} == {cleanup.REASON_SUPERSEDED}
    assert older.report_digest == "d" * 64  # what a signature committed to is unchanged
    newer.refresh_from_db()
    assert _stored_names(newer) == newer_files
    with pytest.raises(InvalidInput, match="no usable int8 variant"):
        services.register_variant(run=older, kind="int8", actor=approver, version="1.0.1")

    report_after_first = older.report
    assert cleanup.delete_superseded_variant_files(now=NOW + dt.timedelta(hours=1)) == 0
    older.refresh_from_db()
    assert older.report == report_after_first
    assert all(default_storage.exists(name) for name in newer_files)


def test_a_newer_run_that_has_not_finished_supersedes_nothing(version, cpu, approver):
    finished = _run(version, cpu, approver)
    _run(version, cpu, approver, finish=None)  # queued: the finished one is still the evidence
    assert cleanup.delete_superseded_variant_files(now=NOW) == 0
    assert all(default_storage.exists(name) for name in _stored_names(finished))


def test_the_latest_run_of_each_target_keeps_its_files(world, version, cpu, approver):
    other = make_target(world.a.org, name="Jetson")
    on_cpu = _run(version, cpu, approver)
    on_other = _run(version, other, approver)
    assert cleanup.delete_superseded_variant_files(now=NOW) == 0
    for run in (on_cpu, on_other):
        assert all(default_storage.exists(name) for name in _stored_names(run))


def test_a_retired_version_loses_every_variant_file(version, cpu, approver):
    import modelregistry.tasks  # noqa: F401 - registers the tasks

    older, latest = _run(version, cpu, approver), _run(version, cpu, approver)
    services.retire_version(version=version, actor=approver)
    names = _stored_names(older) + _stored_names(latest)
    # Through the beat task this time (same service).
    assert app.tasks["modelregistry.delete_superseded_variant_files"].run() == 4
    assert not any(default_storage.exists(name) for name in names)
    latest.refresh_from_db()
    reasons = {step["data"]["variant"]["deleted_reason"] for step in latest.report["steps"][1:]}
    assert reasons == {cleanup.REASON_RETIRED}


def test_a_file_already_missing_from_storage_is_not_an_error(version, cpu, approver):
    older = _run(version, cpu, approver)
    _run(version, cpu, approver)
    default_storage.delete(_stored_names(older)[0])
    assert cleanup.delete_superseded_variant_files(now=NOW) == 2
    older.refresh_from_db()
    assert _stored_names(older) == ["", ""]


def test_variants_of_real_validation_runs_are_deleted_once_superseded(world, approver, cpu):
    """Two real validations of the digits model (INT8/FP16 variants kept by the worker code)."""
    digits = onnx_models.digits_mlp()
    model = services.create_model(organization=world.a.org, actor=approver, name="digits")
    version = services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits.onnx"),
        inputs_file=ContentFile(digits.inputs_path.read_bytes(), name="inputs.npz"),
        version="1.0.0",
        shape_buckets={"X[0]": [1]},
    )
    runs = []
    for _ in range(2):
        run = services.start_validation(version=version, target=cpu, actor=approver)
        runs.append(services.execute_validation_run(run_id=run.pk))
    older, newer = ([name for name in _stored_names(run) if name] for run in runs)
    assert older and newer, "the digits runs stored no variant"
    assert all(name.startswith(f"variants/{world.a.org.pk}/") for name in older + newer)

    assert cleanup.delete_superseded_variant_files() == len(older)
    assert not any(default_storage.exists(name) for name in older)
    assert all(default_storage.exists(name) for name in newer)
    assert cleanup.delete_superseded_variant_files() == 0
