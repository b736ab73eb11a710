"""Migration 0004: stored shape buckets keyed by a placeholder ("?") become input[axis] keys."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.models import HardwareTarget
from modelregistry import services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.roles import Role
from tests import onnx_models

migration = importlib.import_module("modelregistry.migrations.0004_shape_buckets_by_axis")

METADATA = {
    "inputs": [
        {"name": "x", "shape": [None, 3, "?", "?"]},
        {"name": "mask", "shape": ["batch", "?"]},
    ]
}


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"?": [64]}, {"x[2]": [64], "x[3]": [64], "mask[1]": [64]}),
        ({"?": [64], "x[3]": [32]}, {"x[2]": [64], "x[3]": [32], "mask[1]": [64]}),
        ({"batch": [1, 8], "x[0]": [1]}, {"batch": [1, 8], "x[0]": [1]}),
        ([{"x": [1, 3, 4, 4]}], [{"x": [1, 3, 4, 4]}]),
        ({"unknown_name": [3]}, {"unknown_name": [3]}),  # kept: the request path names it
        ({}, {}),
        (None, None),
    ],
)
def test_placeholder_keys_become_one_key_per_axis_they_sized(stored, expected):
    assert migration.by_axis(stored, METADATA) == expected


@pytest.mark.django_db
def test_the_migration_rewrites_stored_versions_and_runs_and_is_idempotent(world):
    migration.forwards(apps, None)  # an empty database: nothing to do, no error
    actor = Actor.for_user(world.a.user(Role.APPROVER))
    model = services.create_model(organization=world.a.org, actor=actor, name="detector")
    model_bytes = onnx_models.unknown_axes_model().SerializeToString()
    version = services.upload_version(
        model=model,
        actor=actor,
        artifact=SimpleUploadedFile("d.onnx", model_bytes),
        version="1.0.0",
    )
    ModelVersion.objects.filter(pk=version.pk).update(shape_buckets={"x[0]": [1], "?": [64]})
    run = ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.get(builtin_key="cpu"),
        number=1,
        shape_buckets={"?": [48], "x[0]": [2]},
    )
    untouched = ValidationRun.objects.create(
        version=version, target=run.target, number=2, shape_buckets={"x[0]": [1]}
    )
    for _ in range(2):
        migration.forwards(apps, None)
        version.refresh_from_db()
        run.refresh_from_db()
        untouched.refresh_from_db()
        assert version.shape_buckets == {"x[0]": [1], "x[2]": [64], "x[3]": [64]}
        assert run.shape_buckets == {"x[2]": [48], "x[3]": [48], "x[0]": [2]}
        assert untouched.shape_buckets == {"x[0]": [1]}


def test_backwards_is_a_no_op():
    operation = migration.Migration.operations[0]
    assert operation.reversible and operation.reverse_code is operation.noop
