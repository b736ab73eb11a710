"""Demo model registry: a signing key and one uploaded (not yet validated) model version.

Runs after the fleet's demo (apps seed in ``INSTALLED_APPS`` order). Idempotent.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from django.core.files.base import ContentFile

from opshero.actors import Actor

from . import services, signing_services
from .models import MlModel, SigningKey


def seed(context: dict, stdout=None) -> None:
    """A signing key and a model with one uploaded (not yet validated) version.

    The version is SqueezeNet from the ``onnx`` wheel's test data (random weights): a real
    architecture to validate for operators and latency, not a real dock damage detector.
    """
    org, users = context["org"], context["users"]
    admin = Actor.for_user(users["demo-admin"])
    approver = Actor.for_user(users["demo-approver"])
    if not SigningKey.objects.filter(organization=org, status=SigningKey.Status.ACTIVE).exists():
        signing_services.create_signing_key(organization=org, actor=admin)
    if MlModel.objects.filter(organization=org, name="dock-damage-classifier").exists():
        return
    model = services.create_model(
        organization=org,
        actor=approver,
        name="dock-damage-classifier",
        task="classification",
        workflow="Logistics dock: damage and label exceptions",
        description="Demo: SqueezeNet architecture from the onnx wheel's test data (random "
        "weights); validate it for operators and latency on each target.",
        latency_budget_ms=150,
    )
    squeezenet = (
        Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_squeezenet.onnx"
    )
    services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(squeezenet.read_bytes(), name="squeezenet.onnx"),
        version="0.9.0",
        release_notes="First candidate for the dock pilot.",
    )
    if stdout is not None:
        stdout.write("Demo model: dock-damage-classifier 0.9.0 (not validated yet)")
