"""Reading a classifier's outputs, and the statistics built on them.

How the class-score output is found (:func:`find_score_output`):

1. Candidates are float tensor outputs whose shape, ignoring trailing size-1 axes, is
   ``[samples, classes]`` with at least 2 classes (``[N, C]``, ``[N, C, 1, 1]``, ``[1, C]``).
   Integer outputs such as skl2onnx's ``label`` and non-tensor outputs such as ``ZipMap``'s list of
   dicts are never candidates.
2. Among candidates, names that say what they are win, in this order: ``prob``, ``softmax``,
   ``score``, ``logit``; then the output with the most classes; then declaration order.
3. Whether the values are already probabilities is decided from the values themselves: every
   row non-negative and summing to 1 (±1e-3) means probabilities; anything else is treated as
   logits and passed through a softmax. skl2onnx's ``probabilities`` (zipmap disabled) and the
   light models' ``softmaxout_1`` are probabilities; a bare ``Gemm`` head gives logits.

Labels are class indices into the score columns (for skl2onnx classifiers trained on integer
classes 0..C-1 this is the class itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxcheck.inspection import TensorSpec

ECE_BINS = 15
"""Equal-width confidence bins for expected calibration error (Guo et al. 2017; MLPerf norms)."""

_NAME_HINTS = ("prob", "softmax", "score", "logit")


@dataclass(frozen=True)
class ScoreOutput:
    """The output that carries class scores and how to turn it into probabilities."""

    name: str
    num_classes: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "num_classes": self.num_classes, "reason": self.reason}


def _score_candidate(spec: TensorSpec) -> tuple[bool, int | None]:
    """Whether an output can hold class scores, and its class count (``None`` if dynamic)."""
    if spec.kind != "tensor" or spec.dtype not in {"float32", "float16", "float64", "bfloat16"}:
        return False, None
    if spec.shape is None:
        return True, None
    dims = list(spec.shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    if len(dims) != 2:
        return False, None
    classes = dims[1]
    if isinstance(classes, int):
        return classes >= 2, classes
    return True, None


def find_score_output(
    *, outputs: Sequence[TensorSpec], preferred: str | None = None
) -> ScoreOutput | None:
    """Pick the class-score output (see module docstring); ``None`` if the model has none."""
    by_name = {spec.name: spec for spec in outputs}
    if preferred is not None:
        if preferred not in by_name:
            raise KeyError(f"model has no output {preferred!r}; outputs: {sorted(by_name)}")
        _, classes = _score_candidate(by_name[preferred])
        return ScoreOutput(preferred, classes, "chosen by the caller")
    candidates = []
    for order, spec in enumerate(outputs):
        usable, classes = _score_candidate(spec)
        if not usable:
            continue
        lowered = spec.name.lower()
        hint = next(
            (rank for rank, word in enumerate(_NAME_HINTS) if word in lowered), len(_NAME_HINTS)
        )
        candidates.append((hint, -(classes or 0), order, spec, classes))
    if not candidates:
        return None
    hint, _, _, spec, classes = min(candidates, key=lambda item: item[:3])
    why = (
        f"name contains '{_NAME_HINTS[hint]}'"
        if hint < len(_NAME_HINTS)
        else "only/largest float [samples, classes] output"
    )
    return ScoreOutput(spec.name, classes, f"float [samples, classes] output; {why}")


def as_probabilities(raw: np.ndarray) -> tuple[np.ndarray, str]:
    """``[N, C]`` float64 probabilities from a score output, and which form it was in."""
    scores = np.asarray(raw, dtype=np.float64)
    scores = scores.reshape(scores.shape[0], -1) if scores.ndim != 2 else scores
    sums = scores.sum(axis=1)
    if scores.size and scores.min() >= 0.0 and np.allclose(sums, 1.0, atol=1e-3):
        return scores, "probabilities"
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True), "logits (softmax applied)"


def top1(probabilities: np.ndarray) -> np.ndarray:
    return np.argmax(probabilities, axis=1)


def accuracy(*, predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions == labels)) if len(labels) else math.nan


def sqnr_db(*, reference: np.ndarray, test: np.ndarray) -> float | None:
    """Signal-to-quantization-noise ratio 10·log10(Σref² / Σ(ref-test)²) in dB.

    ``None`` when the ratio is undefined: bit-identical outputs (no noise) or an all-zero
    reference (no signal).
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    noise = ref - np.asarray(test, dtype=np.float64).ravel()
    noise_power = float(np.dot(noise, noise))
    signal_power = float(np.dot(ref, ref))
    if noise_power == 0.0 or signal_power == 0.0:
        return None
    return 10.0 * math.log10(signal_power / noise_power)


def _bin_index(confidences: np.ndarray, bins: int) -> np.ndarray:
    """Bin k holds confidences in (k/bins, (k+1)/bins]; 0 goes to bin 0."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)


def calibration_bins(
    *, confidences: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, Any]]:
    """Reliability-diagram data: per equal-width bin, its range, count, mean confidence and
    accuracy (``None`` for empty bins)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = _bin_index(confidences, bins)
    counts = np.bincount(index, minlength=bins)
    conf_sums = np.bincount(index, weights=confidences, minlength=bins)
    correct_sums = np.bincount(index, weights=correct, minlength=bins)
    rows = []
    for k in range(bins):
        count = int(counts[k])
        rows.append(
            {
                "lower": k / bins,
                "upper": (k + 1) / bins,
                "count": count,
                "confidence_mean": float(conf_sums[k] / count) if count else None,
                "accuracy": float(correct_sums[k] / count) if count else None,
            }
        )
    return rows


def expected_calibration_error(
    *, confidences: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE = Σ_b (n_b / N) · |accuracy_b - mean confidence_b| over equal-width bins."""
    rows = calibration_bins(confidences=confidences, correct=correct, bins=bins)
    total = sum(row["count"] for row in rows)
    if not total:
        return math.nan
    return float(
        sum(
            row["count"] / total * abs(row["accuracy"] - row["confidence_mean"])
            for row in rows
            if row["count"]
        )
    )


def distribution(values: np.ndarray, *, num_classes: int) -> dict[str, Any]:
    """Counts and shares per class index, the class-mix baseline drift compares against."""
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=num_classes)
    total = int(counts.sum())
    return {
        "counts": [int(count) for count in counts],
        "shares": [float(count / total) if total else 0.0 for count in counts],
        "total": total,
    }


def confidence_histogram(confidences: np.ndarray, *, bins: int = 20) -> dict[str, Any]:
    """Counts of top-1 confidence in equal-width bins over [0, 1] (drift baseline)."""
    counts, edges = np.histogram(np.asarray(confidences, dtype=np.float64), bins=bins, range=(0, 1))
    return {"edges": [float(edge) for edge in edges], "counts": [int(c) for c in counts]}
