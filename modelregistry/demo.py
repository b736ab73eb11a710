"""Demo model registry: a signing key and two uploaded (not yet validated) models.

Runs after the fleet's demo (apps seed in ``INSTALLED_APPS`` order). Idempotent.

Both models are described for what they are:

- ``handwritten-digits``: a real classifier (scikit-learn's 8x8 digits, committed in
  ``demo_data/`` by ``scripts/make_demo_model.py``) uploaded with its 300 labelled held-out
  samples, so accuracy, calibration and INT8 fidelity are measured on real data.
- ``squeezenet-test-network``: the SqueezeNet architecture from the ``onnx`` wheel's test data
  with generated weights; its outputs mean nothing, it is there for operator and latency checks.

Nothing is trained or downloaded here: the seed only reads committed files and the onnx wheel.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import onnx
from django.core.files.base import ContentFile

from onnxcheck.inspection import sha256_file
from opshero.actors import Actor

from . import services, signing_services
from .models import MlModel, SigningKey

DEMO_DATA_DIR = Path(__file__).resolve().parent / "demo_data"
DIGITS_MODEL_PATH = DEMO_DATA_DIR / "digits.onnx"
DIGITS_INPUTS_PATH = DEMO_DATA_DIR / "digits_inputs.npz"
SQUEEZENET_PATH = (
    Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_squeezenet.onnx"
)

DIGITS_NAME = "handwritten-digits"
SQUEEZENET_NAME = "squeezenet-test-network"
# Seeded before the demo said what its model was; renamed in place so old demo databases
# stop claiming a dock damage classifier.
LEGACY_SQUEEZENET_NAME = "dock-damage-classifier"

DIGITS_LABELS = [str(digit) for digit in range(10)]
DIGITS_IO_CONTRACT = {
    "labels": DIGITS_LABELS,
    "score_output": "probabilities",
    "scores": "probabilities",
    # Raw 8x8 pixel intensities 0..16, flattened row by row; the model scales nothing outside.
    "preprocessing": {"layout": "NC", "scale": 1.0, "mean": [], "std": [], "color_order": "none"},
    "intended_use": (
        "Demo only: scikit-learn's bundled 8x8 handwritten digits (0-9), an MLP trained with "
        "scikit-learn and exported with skl2onnx. Input: 64 pixel intensities 0..16 (one 8x8 "
        "grey image, row by row). Not for any production decision."
    ),
}

DIGITS = {
    "name": DIGITS_NAME,
    "task": "classification",
    "workflow": "Demo: scikit-learn's 8x8 handwritten digits (classes 0-9)",
    "description": (
        "A real, small classifier: scikit-learn MLPClassifier trained on scikit-learn's bundled "
        "8x8 handwritten digits and exported with skl2onnx. Input X float32 [N, 64] (pixel "
        "values 0..16); outputs label and probabilities [N, 10] for the classes '0'..'9'. "
        "Version 1.0.0 comes with 300 labelled held-out digits, so its validation measures "
        "accuracy, calibration and INT8 fidelity on real data."
    ),
    "latency_budget_ms": 50,
    "min_accuracy": 0.9,
}
SQUEEZENET = {
    "name": SQUEEZENET_NAME,
    "task": "classification",
    "workflow": "Test network: operator and latency checks only",
    "description": (
        "SqueezeNet architecture from the onnx wheel's test data, with random (generated) "
        "weights: 1,000 output classes, 1x3x224x224 input. Useful for operator compatibility "
        "and latency checks on each target only; its outputs mean nothing."
    ),
    "latency_budget_ms": 150,
}


def seed(context: dict, stdout=None) -> None:
    """A signing key, the digits classifier (1.0.0, with labelled inputs) and the SqueezeNet
    test network (0.9.0); each is created once, whatever was seeded before."""
    org, users = context["org"], context["users"]
    admin = Actor.for_user(users["demo-admin"])
    approver = Actor.for_user(users["demo-approver"])
    if not SigningKey.objects.filter(organization=org, status=SigningKey.Status.ACTIVE).exists():
        signing_services.create_signing_key(organization=org, actor=admin)

    digits = _ensure_model(org, approver, DIGITS)
    if not digits.versions.exists():
        extra = {}
        # upload_version gains io_contract in a parallel change; pass it once it exists.
        if "io_contract" in inspect.signature(services.upload_version).parameters:
            extra["io_contract"] = DIGITS_IO_CONTRACT
        services.upload_version(
            model=digits,
            actor=approver,
            artifact=ContentFile(DIGITS_MODEL_PATH.read_bytes(), name="digits.onnx"),
            inputs_file=ContentFile(DIGITS_INPUTS_PATH.read_bytes(), name="digits_inputs.npz"),
            version="1.0.0",
            release_notes="Digits MLP with 300 labelled held-out samples as representative inputs.",
            **extra,
        )

    legacy = MlModel.objects.filter(organization=org, name=LEGACY_SQUEEZENET_NAME).first()
    squeezenet_exists = MlModel.objects.filter(organization=org, name=SQUEEZENET_NAME).exists()
    if legacy is not None and not squeezenet_exists and _holds_only_squeezenet(legacy):
        fields = {k: SQUEEZENET[k] for k in ("name", "workflow", "description")}
        services.update_model(model=legacy, actor=approver, **fields)
    squeezenet = _ensure_model(org, approver, SQUEEZENET)
    if not squeezenet.versions.exists():
        services.upload_version(
            model=squeezenet,
            actor=approver,
            artifact=ContentFile(SQUEEZENET_PATH.read_bytes(), name="squeezenet.onnx"),
            version="0.9.0",
            release_notes="SqueezeNet test network (random weights): operators and latency only.",
        )
    if stdout is not None:
        stdout.write(
            f"Demo models: {DIGITS_NAME} 1.0.0 (with labelled inputs) and {SQUEEZENET_NAME} 0.9.0 "
            "(random weights); not validated yet"
        )


def _ensure_model(org, actor: Actor, values: dict) -> MlModel:
    model = MlModel.objects.filter(organization=org, name=values["name"]).first()
    if model is None:
        model = services.create_model(organization=org, actor=actor, **values)
    return model


def _holds_only_squeezenet(model: MlModel) -> bool:
    """The legacy demo model is renamed only if it still holds nothing but the seeded file (a
    user may have reused the name for a real model)."""
    squeezenet = sha256_file(SQUEEZENET_PATH)
    return set(model.versions.values_list("sha256", flat=True)) <= {squeezenet}
