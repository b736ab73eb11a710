"""Scoring maths against hand-computed values: ECE, SQNR, softmax, score output choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from onnxcheck.inspection import inspect_model
from onnxcheck.scoring import (
    as_probabilities,
    calibration_bins,
    expected_calibration_error,
    find_score_output,
    sqnr_db,
)
from tests import onnx_models


def test_ece_matches_a_hand_computed_example():
    # One sample per bin: ECE = mean |correct - confidence| = (0.05 + 0.85 + 0.38 + 0.31) / 4.
    confidences = np.array([0.95, 0.85, 0.62, 0.31])
    correct = np.array([True, False, True, False])
    assert expected_calibration_error(confidences=confidences, correct=correct) == pytest.approx(
        0.3975
    )
    # Two samples in bin (13/15, 14/15]: accuracy 0.5, confidence 0.91 -> ECE 0.41.
    shared = expected_calibration_error(
        confidences=np.array([0.90, 0.92]), correct=np.array([True, False])
    )
    assert shared == pytest.approx(0.41)
    bins = calibration_bins(confidences=np.array([0.90, 0.92]), correct=np.array([True, False]))
    assert len(bins) == 15 and bins[13]["count"] == 2 and bins[13]["accuracy"] == 0.5


def test_sqnr_and_softmax_and_score_output_choice(digits):
    assert sqnr_db(reference=np.array([3.0, 4.0]), test=np.array([3.0, 4.5])) == pytest.approx(20.0)
    assert sqnr_db(reference=np.array([1.0]), test=np.array([1.0])) is None
    probabilities, form = as_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert form == "probabilities" and probabilities[0, 1] == 0.8
    from_logits, form = as_probabilities(np.array([[0.0, math.log(3.0)]]))
    assert form.startswith("logits") and from_logits[0] == pytest.approx([0.25, 0.75])
    chosen = find_score_output(outputs=inspect_model(path=digits.model_path).outputs)
    assert chosen is not None and (chosen.name, chosen.num_classes) == ("probabilities", 10)
    light = inspect_model(path=onnx_models.light_model_path("squeezenet"))
    assert find_score_output(outputs=light.outputs).name == light.outputs[0].name
