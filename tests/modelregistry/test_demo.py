"""The demo registry says what its models are, and the digits classifier really classifies.

``modelregistry/demo_data`` holds a committed scikit-learn digits MLP and its held-out labelled
samples (made by ``scripts/make_demo_model.py``); the seed uploads them, and the SqueezeNet
test network from the onnx wheel, once.
"""

from __future__ import annotations

import inspect
import io
import time

import numpy as np
import onnxruntime as ort
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from fleet import demo as fleet_demo
from fleet.models import HardwareTarget
from modelregistry import demo, services
from modelregistry.models import MlModel, ModelVersion, ValidationRun
from onnxcheck.inputs import load_representative_inputs
from onnxcheck.inspection import inspect_model, sha256_file
from opshero import demo as platform_demo
from opshero.actors import Actor
from opshero.models import AuditEvent
from protocol.contract import IoContract, check_contract_against_outputs


def _seed():
    call_command("seed_demo", stdout=io.StringIO())


def test_the_committed_digits_model_is_accurate_on_the_committed_held_out_inputs():
    inputs = np.load(demo.DIGITS_INPUTS_PATH)
    assert sorted(inputs.files) == ["X", "labels"]
    features, labels = inputs["X"], inputs["labels"]
    assert features.shape == (300, 64) and features.dtype == np.float32
    assert features.min() >= 0 and features.max() <= 16  # raw 8x8 pixel intensities
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(10))

    session = ort.InferenceSession(str(demo.DIGITS_MODEL_PATH), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    predicted, probabilities = session.run(None, {"X": features})
    assert probabilities.shape == (300, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (predicted == probabilities.argmax(axis=1)).all()
    accuracy = float(np.mean(predicted == labels))
    assert accuracy >= 0.9
    # The figure recorded next to the files is the one this model measures.
    readme = (demo.DEMO_DATA_DIR / "README.md").read_text()
    assert f"**{accuracy:.4f}**" in readme


def test_the_committed_inputs_fit_the_committed_model_and_the_contract_fits_its_outputs():
    metadata = inspect_model(path=demo.DIGITS_MODEL_PATH)
    loaded = load_representative_inputs(npz_path=demo.DIGITS_INPUTS_PATH, inputs=metadata.inputs)
    assert loaded.sample_count == 300 and loaded.labels is not None
    contract = IoContract.from_dict(demo.DIGITS_IO_CONTRACT)
    assert contract.labels == tuple(str(digit) for digit in range(10))
    outputs = [spec.to_dict() for spec in metadata.outputs]
    assert check_contract_against_outputs(contract, outputs) == []


@pytest.mark.django_db
def test_seed_names_both_models_truthfully_and_running_it_again_changes_nothing():
    _seed()
    digits = MlModel.objects.get(name="handwritten-digits")
    squeezenet = MlModel.objects.get(name="squeezenet-test-network")
    assert not MlModel.objects.filter(name="dock-damage-classifier").exists()
    assert "8x8 handwritten digits" in digits.workflow + digits.description
    assert "random" in squeezenet.description and "mean nothing" in squeezenet.description

    # 1.0.0 is the upload; the rollouts demo adds its INT8 variant as 1.1.0 (rollouts/demo.py).
    version = digits.versions.get(version="1.0.0")
    assert not version.derived_from_id
    assert version.sha256 == sha256_file(demo.DIGITS_MODEL_PATH)
    assert version.inputs_file.name.endswith(".npz")
    with version.inputs_file.open("rb") as handle:
        assert handle.read() == demo.DIGITS_INPUTS_PATH.read_bytes()
    if "io_contract" in inspect.signature(services.upload_version).parameters:
        # Once upload_version takes a contract, the seed passes the digits one.
        assert version.io_contract["labels"] == [str(digit) for digit in range(10)]
        assert version.io_contract["score_output"] == "probabilities"
    (test_network,) = squeezenet.versions.all()
    assert test_network.sha256 == sha256_file(demo.SQUEEZENET_PATH)
    assert not test_network.inputs_file

    counts = (MlModel.objects.count(), ModelVersion.objects.count(), AuditEvent.objects.count())
    _seed()
    assert (
        MlModel.objects.count(),
        ModelVersion.objects.count(),
        AuditEvent.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_a_database_seeded_before_is_renamed_truthfully_not_duplicated():
    """The old seed called SqueezeNet "dock-damage-classifier"; the new one renames it."""
    context = platform_demo.seed()
    approver = Actor.for_user(context["users"]["demo-approver"])
    legacy = services.create_model(
        organization=context["org"], actor=approver, name="dock-damage-classifier"
    )
    services.upload_version(
        model=legacy,
        actor=approver,
        artifact=ContentFile(demo.SQUEEZENET_PATH.read_bytes(), name="squeezenet.onnx"),
        version="0.9.0",
    )
    demo.seed(context)
    legacy.refresh_from_db()
    assert legacy.name == "squeezenet-test-network"
    assert "mean nothing" in legacy.description
    assert legacy.versions.count() == 1
    assert set(MlModel.objects.values_list("name", flat=True)) == {
        "handwritten-digits",
        "squeezenet-test-network",
    }


@pytest.mark.worker
def test_the_seeded_digits_version_passes_on_cpu_with_labelled_inputs_on_a_real_worker(
    celery_worker,
):
    # The registry's own demo only: seed_demo as a whole also validates and signs 1.0.0 (the
    # rollouts demo), and this test validates it itself, on a real worker.
    context = platform_demo.seed()
    fleet_demo.seed(context)
    demo.seed(context)
    version = ModelVersion.objects.get(model__name="handwritten-digits", version="1.0.0")
    approver = Actor.for_user(version.model.owner)
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    run = services.start_validation(version=version, target=cpu, actor=approver)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_measured:
            break
        time.sleep(0.5)
    assert run.status == ValidationRun.Status.PASSED, (run.status, run.reasons, run.error)
    assert not run.synthetic_inputs
    inputs = run.report["inputs"]
    assert inputs["has_labels"] and inputs["sample_count"] == 300
