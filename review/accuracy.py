"""Field accuracy from reviews and operator thumbs: pure computation, no Django.

A review says whether the model's prediction on one sampled case was right (``true`` equal to
``predicted``). From a list of reviewed cases this module gives:

- **accuracy with a Wilson 95 % interval** (the Wald interval collapses to zero width at 0 % or
  100 %, which 30 reviews reach easily; Wilson keeps a sensible width at small counts);
- the **confusion matrix** over the model's class names (its I/O contract's order) plus any
  class a case names that the contract does not;
- **calibration**: ECE over 15 equal-width bins (the norm the DESIGN cites) and the reliability
  diagram (per bin: count, mean confidence, accuracy). The bins are the validation worker's
  (``onnxcheck.scoring.calibration_bins``), so field and lab ECE are comparable: bin k holds
  confidences in (k/15, (k+1)/15]; a confidence of exactly 0 goes in the first bin and one of
  exactly 1.0 in the last;
- **thumbs accuracy**: operators' thumbs up / down as a share up, with its Wilson interval;
- the **stratified estimate**. Gateways send two kinds of samples: ``low_confidence`` cases (a
  share of the cases under the site's review threshold: only hard cases, so their accuracy is
  biased low) and ``audit`` cases (a random share of *all* cases). Each is reported apart. When
  both strata have reviews and the share of all cases under the threshold, P(low), is known
  (from the rollups' confidence histogram), the model's accuracy on all cases is
  ``P(low) · acc_low + (1 - P(low)) · acc_high``, where ``acc_low`` is the accuracy on reviewed
  cases under the threshold (low-confidence samples, and audit samples that fell under it: both
  are random draws of the cases under it) and ``acc_high`` the accuracy on audit cases at or
  above the threshold. Its interval is the normal one with P(low) taken as known (it is counted
  over every inference, not sampled): variance ``P² · p_l(1-p_l)/n_l + (1-P)² · p_h(1-p_h)/n_h``,
  each stratum's share shrunk by one success and one failure (Agresti-Coull) so a stratum at
  100 % does not claim zero variance.

Below :data:`MIN_REVIEWS` reviews a figure is still shown, marked "too few reviews to judge"
(``enough`` is False); callers (plan sources, rollout gates) use nothing below it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from onnxcheck.scoring import ECE_BINS, calibration_bins

__all__ = [
    "ECE_BINS",
    "MIN_REVIEWS",
    "TOO_FEW",
    "Z95",
    "AccuracySummary",
    "Calibration",
    "ConfusionMatrix",
    "Proportion",
    "ReliabilityBin",
    "ReviewedCase",
    "StratifiedEstimate",
    "calibration",
    "confusion_matrix",
    "percent",
    "percent_range",
    "proportion",
    "stratified_accuracy",
    "summarise",
    "thumbs_accuracy",
    "wilson_interval",
]

#: Fewer reviews than this: figures are shown, marked :data:`TOO_FEW`, and used nowhere else.
MIN_REVIEWS = 30
TOO_FEW = "too few reviews to judge"
Z95 = 1.959963984540054  # the normal quantile of 0.975

LOW_CONFIDENCE = "low_confidence"
AUDIT = "audit"


@dataclass(frozen=True)
class ReviewedCase:
    """One reviewed case. ``threshold`` is the review threshold of the case's site (None when
    unknown); the case is *under* it when its confidence is below it."""

    predicted: str
    true: str
    confidence: float
    reason: str = AUDIT
    threshold: float | None = None

    @property
    def correct(self) -> bool:
        return self.predicted == self.true

    @property
    def under_threshold(self) -> bool | None:
        return None if self.threshold is None else self.confidence < self.threshold


def percent(value: float | None) -> str:
    """``0.8333`` as ``"83.3 %"`` (a dash for no value): how the pages print shares."""
    return "\u2013" if value is None else f"{value * 100:.1f} %"


def percent_range(interval: tuple[float | None, float | None] | None) -> str:
    if interval is None or interval[0] is None or interval[1] is None:
        return ""
    return f"{interval[0] * 100:.1f} to {interval[1] * 100:.1f} %"


def wilson_interval(*, successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``successes / total`` ((0, 1) when ``total`` is 0)."""
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got {successes} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """A share with its Wilson 95 % interval and the count behind it."""

    successes: int
    total: int
    value: float | None
    low: float | None
    high: float | None
    min_total: int = MIN_REVIEWS

    @property
    def enough(self) -> bool:
        return self.total >= self.min_total

    @property
    def shown(self) -> str:
        return percent(self.value)

    @property
    def interval_shown(self) -> str:
        return percent_range((self.low, self.high))

    @property
    def note(self) -> str:
        if self.total == 0:
            return "none yet"
        return "" if self.enough else TOO_FEW


def proportion(*, successes: int, total: int, min_total: int = MIN_REVIEWS) -> Proportion:
    """``successes / total`` with its Wilson interval (value and bounds None when total is 0)."""
    if total == 0:
        return Proportion(0, 0, None, None, None, min_total)
    low, high = wilson_interval(successes=successes, total=total)
    return Proportion(successes, total, successes / total, low, high, min_total)


def thumbs_accuracy(*, up: int, down: int, min_total: int = MIN_REVIEWS) -> Proportion:
    """Operators' thumbs as accuracy: the share of thumbs up among thumbs given."""
    return proportion(successes=up, total=up + down, min_total=min_total)


@dataclass(frozen=True)
class ConfusionMatrix:
    """``counts[i][j]``: cases whose true class is ``labels[i]`` and predicted ``labels[j]``."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.counts)

    def cell(self, true: str, predicted: str) -> int:
        return self.counts[self.labels.index(true)][self.labels.index(predicted)]


def confusion_matrix(
    *, cases: Iterable[ReviewedCase], class_names: Sequence[str] = ()
) -> ConfusionMatrix:
    """The matrix over ``class_names`` (the contract's order), then any other class seen, in the
    order first seen (a contract can be missing or out of date; no case is dropped)."""
    cases = list(cases)
    labels = list(dict.fromkeys(str(name) for name in class_names))
    for case in cases:
        for name in (case.true, case.predicted):
            if name not in labels:
                labels.append(name)
    index = {name: i for i, name in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for case in cases:
        counts[index[case.true]][index[case.predicted]] += 1
    return ConfusionMatrix(tuple(labels), tuple(tuple(row) for row in counts))


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence_mean: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    """ECE over :data:`ECE_BINS` equal-width bins and the reliability diagram's bins."""

    ece: float | None
    bins: tuple[ReliabilityBin, ...]
    count: int
    min_total: int = MIN_REVIEWS

    @property
    def enough(self) -> bool:
        return self.count >= self.min_total


def calibration(
    *, cases: Iterable[ReviewedCase], bins: int = ECE_BINS, min_total: int = MIN_REVIEWS
) -> Calibration:
    """ECE = Σ_b (n_b / N) · |accuracy_b - mean confidence_b| on the validation worker's bins."""
    import numpy as np

    cases = list(cases)
    confidences = np.asarray([float(c.confidence) for c in cases], dtype=np.float64)
    correct = np.asarray([1.0 if c.correct else 0.0 for c in cases], dtype=np.float64)
    rows = calibration_bins(confidences=confidences, correct=correct, bins=bins)
    diagram = tuple(
        ReliabilityBin(
            lower=float(row["lower"]),
            upper=float(row["upper"]),
            count=int(row["count"]),
            confidence_mean=row["confidence_mean"],
            accuracy=row["accuracy"],
        )
        for row in rows
    )
    total = len(cases)
    ece = None
    if total:
        ece = sum(
            b.count / total * abs(b.accuracy - b.confidence_mean)  # type: ignore[operator]
            for b in diagram
            if b.count
        )
    return Calibration(ece=ece, bins=diagram, count=total, min_total=min_total)


@dataclass(frozen=True)
class StratifiedEstimate:
    """Accuracy on all cases from the two strata, or why there is none (``missing``)."""

    low: Proportion  # reviewed cases under the threshold
    high: Proportion  # audit cases at or above the threshold
    low_share: float | None  # P(low): share of all inferences under the threshold
    value: float | None
    interval: tuple[float, float] | None
    missing: str = ""
    min_total: int = MIN_REVIEWS

    @property
    def enough(self) -> bool:
        return self.value is not None and self.low.total + self.high.total >= self.min_total

    @property
    def total(self) -> int:
        return self.low.total + self.high.total

    @property
    def shown(self) -> str:
        return percent(self.value)

    @property
    def interval_shown(self) -> str:
        return percent_range(self.interval)

    @property
    def note(self) -> str:
        if self.value is None:
            return self.missing
        return "" if self.enough else TOO_FEW


def _shrunk_variance(p: Proportion) -> float:
    n = p.total + 2
    shrunk = (p.successes + 1) / n
    return shrunk * (1 - shrunk) / n


def stratified_accuracy(
    *,
    cases: Iterable[ReviewedCase],
    low_share: float | None,
    min_total: int = MIN_REVIEWS,
) -> StratifiedEstimate:
    """``P(low) · acc_low + (1 - P(low)) · acc_high`` (see the module docstring).

    Cases without a known threshold are left out (they belong to neither stratum); low-confidence
    samples at or above their threshold (the threshold was raised after they were sampled) too.
    """
    low_hits = low_n = high_hits = high_n = 0
    for case in cases:
        under = case.under_threshold
        if under is None:
            continue
        if under:
            low_n += 1
            low_hits += case.correct
        elif case.reason == AUDIT:
            high_n += 1
            high_hits += case.correct
    low = proportion(successes=low_hits, total=low_n, min_total=min_total)
    high = proportion(successes=high_hits, total=high_n, min_total=min_total)
    missing = ""
    if low_share is None:
        missing = "the share of cases under the threshold is not known (no rollups)"
    elif not 0.0 <= low_share <= 1.0:
        raise ValueError(f"low_share must lie in [0, 1], not {low_share!r}")
    elif low_share > 0 and low.total == 0:
        missing = "no reviewed case under the threshold"
    elif low_share < 1 and high.total == 0:
        missing = "no audit case at or above the threshold"
    if missing:
        return StratifiedEstimate(low, high, low_share, None, None, missing, min_total)
    assert low_share is not None
    value = (low_share * low.value if low.total else 0.0) + (
        (1 - low_share) * high.value if high.total else 0.0
    )
    variance = (low_share**2) * _shrunk_variance(low) + ((1 - low_share) ** 2) * _shrunk_variance(
        high
    )
    half = Z95 * math.sqrt(variance)
    interval = (max(0.0, value - half), min(1.0, value + half))
    return StratifiedEstimate(low, high, low_share, value, interval, "", min_total)


@dataclass(frozen=True)
class AccuracySummary:
    """Everything the accuracy page shows of one scope's reviews."""

    reviewed: Proportion  # all reviewed cases, whatever their reason (a biased mix)
    by_reason: dict[str, Proportion]  # "low_confidence", "audit"
    stratified: StratifiedEstimate
    confusion: ConfusionMatrix
    calibration: Calibration
    min_total: int = MIN_REVIEWS
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def best(self) -> Proportion | StratifiedEstimate | None:
        """The figure that estimates accuracy on *all* cases: the stratified estimate when there
        is one, else the audit cases' accuracy (a random share of all cases); never the
        low-confidence cases alone (only hard cases)."""
        if self.stratified.value is not None:
            return self.stratified
        audit = self.by_reason[AUDIT]
        return audit if audit.total else None


def summarise(
    *,
    cases: Sequence[ReviewedCase],
    class_names: Sequence[str] = (),
    low_share: float | None = None,
    min_total: int = MIN_REVIEWS,
) -> AccuracySummary:
    """All of a scope's figures from its reviewed cases."""
    cases = list(cases)
    by_reason = {
        reason: proportion(
            successes=sum(c.correct for c in cases if c.reason == reason),
            total=sum(1 for c in cases if c.reason == reason),
            min_total=min_total,
        )
        for reason in (LOW_CONFIDENCE, AUDIT)
    }
    return AccuracySummary(
        reviewed=proportion(
            successes=sum(c.correct for c in cases), total=len(cases), min_total=min_total
        ),
        by_reason=by_reason,
        stratified=stratified_accuracy(cases=cases, low_share=low_share, min_total=min_total),
        confusion=confusion_matrix(cases=cases, class_names=class_names),
        calibration=calibration(cases=cases, min_total=min_total),
        min_total=min_total,
    )
