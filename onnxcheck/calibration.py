"""Step (e), ``calibration``: how far the model's confidence can be trusted on labelled inputs.

Accuracy, expected calibration error and the reliability diagram (:mod:`onnxcheck.scoring`),
plus the drift baseline: the top-1 confidence histogram and the predicted and labelled class
mix. Needs uploaded inputs with labels and a class-score output; the step is skipped otherwise.
"""

from __future__ import annotations

import os

from onnxcheck.evaluation import DEFAULT_MAX_EVAL_SAMPLES, collect_outputs, evaluation_feeds
from onnxcheck.inputs import SYNTHETIC_NOTE, RepresentativeInputs
from onnxcheck.inspection import load_checked_model
from onnxcheck.latency import create_session
from onnxcheck.results import FAILED, PASSED, StepResult, StepTimer
from onnxcheck.scoring import (
    ECE_BINS,
    accuracy,
    as_probabilities,
    calibration_bins,
    confidence_histogram,
    distribution,
    expected_calibration_error,
    find_score_output,
    top1,
)


def check_calibration(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    max_samples: int = DEFAULT_MAX_EVAL_SAMPLES,
    external_root: str | os.PathLike[str] | None = None,
) -> StepResult:
    """Accuracy, ECE (15 equal-width bins), reliability diagram, and the drift baseline
    (top-1 confidence histogram and class mix). Needs uploaded inputs with labels."""
    timer = StepTimer()
    if inputs.synthetic:
        return StepResult.skipped("calibration", SYNTHETIC_NOTE)
    if inputs.labels is None:
        return StepResult.skipped("calibration", "no labels in the uploaded inputs")
    _, metadata = load_checked_model(path=model_path, external_root=external_root)
    chosen = find_score_output(outputs=metadata.outputs, preferred=score_output)
    if chosen is None:
        return StepResult.skipped(
            "calibration", "no class-score output ([samples, classes] float tensor) found"
        )
    session, _ = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    feeds = list(evaluation_feeds(inputs, max_samples))
    raw = collect_outputs(session, feeds, [chosen.name])[chosen.name]
    probabilities, form = as_probabilities(raw)
    labels = inputs.labels[: len(probabilities)]
    classes = probabilities.shape[1]
    findings: list[str] = []
    if labels.size and int(labels.max()) >= classes:
        return StepResult(
            "calibration",
            FAILED,
            timer.ms(),
            [
                f"labels go up to {int(labels.max())} but '{chosen.name}' has {classes} "
                "classes; labels must be class indices 0..C-1"
            ],
            {"score_output": chosen.to_dict()},
        )
    predictions = top1(probabilities)
    confidences = probabilities.max(axis=1)
    correct = predictions == labels
    ece = expected_calibration_error(confidences=confidences, correct=correct)
    acc = accuracy(predictions=predictions, labels=labels)
    data = {
        "score_output": {**chosen.to_dict(), "form": form},
        "samples": len(labels),
        "accuracy": acc,
        "ece": ece,
        "ece_bins": ECE_BINS,
        "mean_confidence": float(confidences.mean()),
        "reliability": calibration_bins(confidences=confidences, correct=correct),
        "drift_baseline": {
            "confidence_histogram": confidence_histogram(confidences),
            "predicted_class_mix": distribution(predictions, num_classes=classes),
            "label_class_mix": distribution(labels, num_classes=classes),
        },
    }
    findings.append(
        f"accuracy {acc:.4f}, ECE {ece:.4f} ({ECE_BINS} bins), mean confidence "
        f"{data['mean_confidence']:.4f} on {len(labels)} labelled samples ({form})"
    )
    return StepResult("calibration", PASSED, timer.ms(), findings, data)
