"""Every file the registry reads or writes goes through Django's storage API.

The same upload → validation → variant → download path runs on a storage that has no local
paths at all (Django's ``InMemoryStorage``, standing in for S3-compatible object storage):
anything that still opened ``FieldFile.path`` would find no file there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from fleet.models import HardwareTarget
from modelregistry import services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.roles import Role
from tests import onnx_models


@pytest.fixture
def object_storage(settings):
    """Uploads land in a storage without local paths (Django resets its storage handler and
    ``default_storage`` when ``STORAGES`` changes)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    return storages["default"]


def test_validation_reads_artifacts_and_inputs_through_the_storage_api(
    world, object_storage, login
):
    digits = onnx_models.digits_mlp()
    approver = world.a.user(Role.APPROVER)
    actor = Actor.for_user(approver)
    model = services.create_model(organization=world.a.org, actor=actor, name="digits")
    version = services.upload_version(
        model=model,
        actor=actor,
        artifact=ContentFile(digits.model_path.read_bytes(), name="digits.onnx"),
        inputs_file=ContentFile(digits.inputs_path.read_bytes(), name="inputs.npz"),
        version="1.0",
        shape_buckets={"X[0]": [1]},
    )
    assert type(version.artifact.storage._wrapped).__name__ == "InMemoryStorage"
    # Nothing is on local disk where a path-based reader would look for it.
    assert not Path(version.artifact.storage.path(version.artifact.name)).exists()
    assert object_storage.exists(version.artifact.name)
    assert object_storage.exists(version.inputs_file.name)

    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = services.start_validation(version=version, target=cpu, actor=actor)
    run = services.execute_validation_run(run_id=run.pk)

    assert run.status in (ValidationRun.Status.PASSED, ValidationRun.Status.FAILED), run.error
    integrity = next(step for step in run.steps if step["name"] == "integrity")
    assert integrity["status"] == "passed"
    assert not run.synthetic_inputs
    # Variants the run produced were written back through the storage API too.
    for variant in (run.report or {}).get("variants", {}).values():
        if variant.get("stored_name"):
            assert object_storage.exists(variant["stored_name"])

    response = login(approver).get(f"/o/{world.a.org.slug}/models/versions/{version.pk}/artifact/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == digits.model_path.read_bytes()
    assert ModelVersion.objects.get(pk=version.pk).sha256 == version.sha256
