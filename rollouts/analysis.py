"""Canary analysis: is a rollout wave's candidate model worse than the baseline it replaces?

A staged rollout switches one wave of devices to a candidate model version, then compares the
wave (the *candidate* group) with a *baseline* group over the same window: devices at the same
sites still on the previous version, or the same devices before the switch. The caller merges
the telemetry rollups of each group into one :class:`GroupStats`; :func:`analyse` turns the two
into one :class:`CheckVerdict` per check, and :func:`overall` into the wave's outcome.

Why three outcomes
    Every statistical check is decided by a confidence interval against a threshold, not by
    the point estimate: the interval lies entirely past the threshold -> ``FAIL``; entirely
    within it -> ``PASS``; straddling it -> ``INCONCLUSIVE`` (wait for more data or ask a
    human). Too few events, or no baseline at all, is also ``INCONCLUSIVE``, never a pass:
    a wave that sent nothing has not shown it is safe. A verdict carries its interval, so an
    approver sees how sure the figure is, not only which side of the line it fell.

Choices
    * **Latency P95 interval.** Distribution-free, from binomial order statistics: the rank of
      the P95 in a sample of ``n`` is approximately normal with mean ``0.95 n`` and standard
      deviation ``sqrt(0.95 * 0.05 * n)``, so the values at ranks ``floor(0.95 n - z s)`` and
      ``ceil(0.95 n + z s)`` (1-based) bracket the true P95. Values are read from the sketch's
      buckets, so each bound also carries the sketch's relative error (``alpha``, 1 %); that is
      small against a 20 % budget and is reported, not folded in. The ratio interval divides
      the candidate's bounds by the baseline's opposite bounds (conservative: the two
      intervals are independent).
    * **Mann-Whitney on buckets.** Both sketches use the same log-bucket mapping, so buckets
      align and the U test runs on bucket counts: values in one bucket are ties (midranks),
      with the tie-corrected normal approximation and a 0.5 continuity correction, exactly
      what ``scipy.stats.mannwhitneyu(..., method="asymptotic")`` computes on the buckets'
      representative values. A P95 interval alone can be driven by a few slow outliers; a
      latency ``FAIL`` therefore also needs the one-sided "candidate slower" p below
      ``alpha``, otherwise it is ``INCONCLUSIVE``.
    * **Confidence variance from bins.** Rollups keep the exact confidence sum but only a
      20-bin histogram, so the mean is exact and the variance is taken from the bin centres,
      floored at ``width**2 / 12`` (one bin's uniform spread): a histogram with every event in
      one bin would otherwise claim zero variance and a zero-width interval.
    * **Low-confidence share.** Counted from whole bins, so the threshold is rounded *down* to
      a bin edge (0.5 is an edge; 0.52 counts bins below 0.5). The edge used is in the
      figures as ``counted_below``.
    * **Proportion intervals.** Differences of shares (low confidence, throttling) use the
      Agresti-Caffo interval: the normal (Wald) interval on counts with one success and one
      failure added to each group. Plain Wald has a zero width when a share is 0 % (common
      for throttling), which would let 0/30 vs 0/30 look certain; Agresti-Caffo keeps the
      normal form with far better coverage at small counts.
    * **Class mix.** Jensen-Shannon distance (natural log, as :mod:`telemetry.drift`) over the
      union of class names decides the effect; a chi-square homogeneity test (sparse cells
      pooled, classes ordered by total count so rare classes pool with each other) must also
      be significant for a ``FAIL``, so a large-looking distance from a few events does not
      fail a wave.
    * **Failed loads** are a plain share against a limit: every notified device either loaded
      the model or did not, so there is no sampling error to test.

Pure: numpy, scipy.special, :mod:`telemetry.sketch` and :mod:`telemetry.drift` only (no
Django), so tasks, views and tests share it and ``to_dict`` output is stored as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from telemetry.drift import CONFIDENCE_BINS, CONFIDENCE_EDGES, chi_square, jensen_shannon
from telemetry.sketch import LatencySketch

__all__ = [
    "CHECKS",
    "REVIEW_CHECK",
    "CheckVerdict",
    "GroupStats",
    "MannWhitney",
    "Outcome",
    "QuantileInterval",
    "Thresholds",
    "analyse",
    "mann_whitney",
    "overall",
    "quantile_interval",
    "reviewed_accuracy",
]

CHECKS: tuple[str, ...] = (
    "latency_p95",
    "confidence_mean",
    "class_mix",
    "low_confidence",
    "throttling",
    "failed_loads",
)

#: The gate on reviewed accuracy (``review``): judged apart from :data:`CHECKS` and only when the
#: rollout sets ``Thresholds.min_reviews`` (0, the default, leaves it off).
REVIEW_CHECK = "reviewed_accuracy"
_BIN_WIDTH = 1.0 / CONFIDENCE_BINS
_CENTRES = np.asarray(
    [(CONFIDENCE_EDGES[i] + CONFIDENCE_EDGES[i + 1]) / 2 for i in range(CONFIDENCE_BINS)]
)
_EDGE_SLACK = 1e-9  # so 0.5 / 0.05 = 9.999999 still counts as the edge of bin 10
_SIGNIFICANT = 6  # digits kept for floats in figures: plenty for a person, stable in JSON
_NO_BASELINE = "no baseline: no devices on the previous version reported in the window"


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupStats:
    """One group's merged telemetry over the analysis window (candidate or baseline).

    ``count`` and ``confidence_sum`` are inference events and the sum of their top-1
    confidences; ``confidence_bins`` their 20-bin histogram on
    :data:`telemetry.drift.CONFIDENCE_EDGES`; ``class_counts`` predicted class name -> events;
    ``latency`` the merged latency sketch (``None`` when the group reported none);
    ``health_samples`` / ``throttled_samples`` health reports and those flagged throttled;
    ``devices`` how many devices contributed (shown to the approver, not used in a test).
    Impossible values (negative counts, more throttled than samples) raise ``ValueError``:
    they are a caller's bug, not a property of the wave.
    """

    count: int
    latency: LatencySketch | None
    confidence_sum: float
    confidence_bins: tuple[int, ...]
    class_counts: Mapping[str, int]
    health_samples: int = 0
    throttled_samples: int = 0
    devices: int = 0

    def __post_init__(self) -> None:
        for name in ("count", "health_samples", "throttled_samples", "devices"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        if self.throttled_samples > self.health_samples:
            raise ValueError("throttled_samples must not exceed health_samples")
        if self.latency is not None and not isinstance(self.latency, LatencySketch):
            raise ValueError("latency must be a LatencySketch or None")
        total = self.confidence_sum
        if not _is_number(total) or not math.isfinite(total):
            raise ValueError(f"confidence_sum must be a finite number, not {total!r}")
        # Confidences lie in [0, 1], so the sum lies in [0, count] (with float slack).
        if not -1e-9 <= total <= self.count * (1 + 1e-9) + 1e-9:
            raise ValueError(f"confidence_sum {total!r} must lie between 0 and count")
        object.__setattr__(self, "confidence_sum", float(total))
        bins = tuple(self.confidence_bins)
        if len(bins) != CONFIDENCE_BINS or not all(_is_int(b) and b >= 0 for b in bins):
            raise ValueError(
                f"confidence_bins must be {CONFIDENCE_BINS} non-negative integers, not {bins!r}"
            )
        object.__setattr__(self, "confidence_bins", tuple(int(b) for b in bins))
        classes: dict[str, int] = {}
        for name, value in dict(self.class_counts).items():
            if not isinstance(name, str) or not _is_int(value) or value < 0:
                raise ValueError(f"class_counts must map names to non-negative integers: {name!r}")
            classes[name] = int(value)
        # Read-only, so a frozen GroupStats really is immutable.
        object.__setattr__(self, "class_counts", MappingProxyType(classes))

    @classmethod
    def empty(cls) -> GroupStats:
        """A group that reported nothing (e.g. no baseline devices at the wave's sites)."""
        return cls(
            count=0,
            latency=None,
            confidence_sum=0.0,
            confidence_bins=(0,) * CONFIDENCE_BINS,
            class_counts={},
        )

    @property
    def latency_events(self) -> int:
        return 0 if self.latency is None else self.latency.count

    @property
    def has_data(self) -> bool:
        """Did the group report anything at all? (``False``: there is nothing to compare.)"""
        return bool(
            self.count
            or self.latency_events
            or self.health_samples
            or sum(self.confidence_bins)
            or sum(self.class_counts.values())
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, so the inputs of a verdict can be stored beside it."""
        return {
            "count": self.count,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "confidence_sum": self.confidence_sum,
            "confidence_bins": list(self.confidence_bins),
            "class_counts": dict(self.class_counts),
            "health_samples": self.health_samples,
            "throttled_samples": self.throttled_samples,
            "devices": self.devices,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupStats:
        """Rebuild from :meth:`to_dict`; ``ValueError`` on unknown keys or bad values."""
        if not isinstance(data, Mapping):
            raise ValueError("group stats must be a JSON object")
        names = {spec.name for spec in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown group stats keys: {', '.join(unknown)}")
        values = dict(data)
        latency = values.get("latency")
        values["latency"] = None if latency is None else LatencySketch.from_dict(latency)
        return cls(**values)


@dataclass(frozen=True)
class Thresholds:
    """What a wave may change before it fails, and how much evidence a verdict needs.

    Stored per rollout (``to_dict``), so a verdict can always be re-read against the limits it
    was judged by. Shares and differences are fractions (0.05 = 5 percentage points); only the
    latency budget is in percent, because that is how latency budgets are stated.
    """

    latency_budget_pct: float = 20.0
    max_confidence_drop: float = 0.05
    max_class_shift: float = 0.1
    low_confidence: float = 0.5
    max_low_confidence_increase: float = 0.05
    max_throttling_increase: float = 0.05
    max_failed_load_share: float = 0.05
    alpha: float = 0.05
    min_events: int = 200
    min_health_samples: int = 30
    # Field accuracy from reviews: judged once the wave's sites have this many reviews of the
    # candidate (0: the gate is off). The candidate may be at most ``max_reviewed_accuracy_drop``
    # below the previous version's reviewed accuracy, and never below the floor (0: no floor).
    min_reviews: int = 0
    max_reviewed_accuracy_drop: float = 0.05
    reviewed_accuracy_floor: float = 0.0

    def __post_init__(self) -> None:
        # A nonsensical limit would silently pass (or fail) every wave; refuse it loudly.
        ranges: dict[str, tuple[float, float, bool]] = {
            # name: (low, high, low inclusive); high is always inclusive
            "latency_budget_pct": (0.0, 1000.0, True),
            "max_confidence_drop": (0.0, 1.0, True),
            "max_class_shift": (0.0, math.sqrt(math.log(2)), False),
            "low_confidence": (0.0, 1.0, False),
            "max_low_confidence_increase": (0.0, 1.0, True),
            "max_throttling_increase": (0.0, 1.0, True),
            "max_failed_load_share": (0.0, 1.0, True),
            "alpha": (0.0, 0.5, False),
            "max_reviewed_accuracy_drop": (0.0, 1.0, True),
            "reviewed_accuracy_floor": (0.0, 1.0, True),
        }
        for name, (low, high, inclusive) in ranges.items():
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
            above = value >= low if inclusive else value > low
            if not (above and value <= high):
                bracket = "[" if inclusive else "("
                raise ValueError(f"{name} must lie in {bracket}{low:g}, {high:g}], not {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("min_events", "min_health_samples"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        if not _is_int(self.min_reviews) or not 0 <= self.min_reviews <= 100_000:
            raise ValueError(
                f"min_reviews must be an integer from 0 to 100000, not {self.min_reviews!r}"
            )
        object.__setattr__(self, "min_reviews", int(self.min_reviews))

    def to_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Thresholds:
        """Read stored thresholds; missing keys take the default, unknown keys are refused.

        Missing keys default so thresholds stored before a new limit existed still load;
        unknown keys are refused because a misspelt limit would otherwise be ignored silently.
        """
        if not isinstance(data, Mapping):
            raise ValueError("thresholds must be a JSON object")
        names = {spec.name for spec in fields(cls)}
        unknown = sorted(str(key) for key in set(data) - names)
        if unknown:
            raise ValueError(f"unknown threshold keys: {', '.join(unknown)}")
        return cls(**dict(data))


# --- outputs ------------------------------------------------------------------------------


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class CheckVerdict:
    """The outcome of one check, a sentence for the approver, and every number behind it."""

    check: str
    outcome: Outcome
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.check not in CHECKS and self.check != REVIEW_CHECK:
            raise ValueError(f"unknown check {self.check!r}")
        object.__setattr__(self, "outcome", Outcome(self.outcome))

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "figures": _clean(self.figures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckVerdict:
        """Rebuild from :meth:`to_dict`; ``ValueError`` on a malformed form."""
        if not isinstance(data, Mapping):
            raise ValueError("a check verdict must be a JSON object")
        expected = {"check", "outcome", "summary", "figures"}
        if set(data) != expected:
            raise ValueError(f"check verdict keys must be {sorted(expected)}")
        if not isinstance(data["summary"], str) or not isinstance(data["figures"], Mapping):
            raise ValueError("a check verdict needs a text summary and a figures object")
        try:
            outcome = Outcome(data["outcome"])
        except ValueError:
            raise ValueError(f"unknown outcome {data['outcome']!r}") from None
        return cls(
            check=data["check"],
            outcome=outcome,
            summary=data["summary"],
            figures=dict(data["figures"]),
        )


# --- figures and wording ------------------------------------------------------------------


def _round(value: Any) -> Any:
    """A figure as JSON: ints exact, floats to 6 significant digits, NaN/inf as ``None``."""
    if value is None or isinstance(value, bool | str):
        return value
    if _is_int(value):
        return int(value)
    if _is_number(value):
        number = float(value)
        return float(f"{number:.{_SIGNIFICANT}g}") if math.isfinite(number) else None
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return _round(value)


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _signed_pct(value: float) -> str:
    return f"{value:+.1f} %"


def _pp(value: float) -> str:
    """A difference of shares in percentage points, signed."""
    return f"{value * 100:+.1f} pp"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def _p(value: float) -> str:
    return "p < 0.0001" if value < 1e-4 else f"p = {value:.2g}"


def _level(alpha: float) -> str:
    return f"{(1 - alpha) * 100:g} %"


def _verdict(check: str, outcome: Outcome, summary: str, figures: dict[str, Any]) -> CheckVerdict:
    return CheckVerdict(check=check, outcome=outcome, summary=summary, figures=_clean(figures))


def _too_few(what: str, candidate: int, baseline: int, needed: int) -> str:
    short = [
        name for name, value in (("candidate", candidate), ("baseline", baseline)) if value < needed
    ]
    return (
        f"Not enough {what} to judge: candidate {candidate:,}, baseline {baseline:,} "
        f"(need {needed:,} each; {' and '.join(short)} short)."
    )


# --- latency statistics -------------------------------------------------------------------


@dataclass(frozen=True)
class _Buckets:
    """A sketch's buckets as arrays (read through the public ``to_dict`` form)."""

    zero: int
    offset: int
    counts: np.ndarray
    gamma: float
    low: float
    high: float

    @classmethod
    def of(cls, sketch: LatencySketch) -> _Buckets:
        data = sketch.to_dict()
        gamma = (1 + data["alpha"]) / (1 - data["alpha"])
        return cls(
            zero=int(data["zero"]),
            offset=int(data["offset"]),
            counts=np.asarray(data["counts"], dtype=np.int64),
            gamma=gamma,
            low=float(data["min"]),
            high=float(data["max"]),
        )

    def value_at(self, index: int) -> float:
        """The value of the sorted element at 0-based ``index``, as ``quantile`` reads it."""
        if index < self.zero:
            value = 0.0
        else:
            cumulative = np.cumsum(self.counts)
            position = int(np.searchsorted(cumulative, index - self.zero, side="right"))
            value = 2 * self.gamma ** (self.offset + position) / (self.gamma + 1)
        return min(max(value, self.low), self.high)


@dataclass(frozen=True)
class QuantileInterval:
    """A quantile of a sketch with its distribution-free interval (0-based ranks used)."""

    q: float
    value: float
    low: float
    high: float
    low_rank: int
    high_rank: int


def quantile_interval(sketch: LatencySketch, *, q: float, alpha: float) -> QuantileInterval | None:
    """The ``q`` quantile of ``sketch`` with a ``1 - alpha`` interval from order statistics.

    The count of values below the true quantile is Binomial(n, q); its normal approximation
    gives 1-based ranks ``floor(nq - z s)`` and ``ceil(nq + z s)``, ``s = sqrt(nq(1-q))``,
    clamped to the sample. The point is ``sketch.quantile(q)``, what dashboards show.
    ``None`` for an empty sketch.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must lie in (0, 1), not {q!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha!r}")
    n = sketch.count
    if n == 0:
        return None
    point = sketch.quantile(q)
    assert point is not None
    z = float(ndtri(1 - alpha / 2))
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = min(max(math.floor(n * q - spread) - 1, 0), n - 1)
    high_rank = min(max(math.ceil(n * q + spread) - 1, 0), n - 1)
    buckets = _Buckets.of(sketch)
    return QuantileInterval(
        q=q,
        value=point,
        low=min(buckets.value_at(low_rank), point),
        high=max(buckets.value_at(high_rank), point),
        low_rank=low_rank,
        high_rank=high_rank,
    )


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U of candidate vs baseline on aligned buckets.

    ``u`` counts (candidate, baseline) pairs with the candidate slower, ties as half;
    ``probability_of_superiority = u / (n1 n2)`` (0.5: neither is slower); ``p_slower`` is the
    one-sided p-value of "the candidate is slower" (``z`` is ``None`` when every value ties).
    """

    u: float
    z: float | None
    p_slower: float
    probability_of_superiority: float
    candidate_events: int
    baseline_events: int


def _same_mapping(a: LatencySketch, b: LatencySketch) -> bool:
    return (a.alpha, a.min_value) == (b.alpha, b.min_value)


def mann_whitney(candidate: LatencySketch, baseline: LatencySketch) -> MannWhitney | None:
    """Mann-Whitney U test on two sketches' bucket counts (``None`` if either is empty).

    Buckets align because both sketches share the mapping (``ValueError`` otherwise). Each
    bucket is a block of ties: a candidate value there beats every baseline value in lower
    buckets and half of those in its own. Tie-corrected variance and a 0.5 continuity
    correction, as ``scipy.stats.mannwhitneyu(alternative="greater", method="asymptotic")``.
    """
    if not _same_mapping(candidate, baseline):
        raise ValueError("sketches with different bucket mappings cannot be compared")
    n1, n2 = candidate.count, baseline.count
    if n1 == 0 or n2 == 0:
        return None
    cand, base = _Buckets.of(candidate), _Buckets.of(baseline)
    starts = [b.offset for b in (cand, base) if b.counts.size]
    ends = [b.offset + b.counts.size for b in (cand, base) if b.counts.size]
    first = min(starts) if starts else 0
    span = (max(ends) - first) if ends else 0

    def aligned(buckets: _Buckets) -> np.ndarray:
        # Index 0 is the zero bucket, below every log bucket.
        out = np.zeros(span + 1, dtype=np.float64)
        out[0] = buckets.zero
        if buckets.counts.size:
            start = buckets.offset - first + 1
            out[start : start + buckets.counts.size] = buckets.counts
        return out

    c, b = aligned(cand), aligned(base)
    below = np.cumsum(b) - b  # baseline values in strictly lower buckets
    u = float(np.sum(c * (below + 0.5 * b)))
    ties = c + b
    total = float(n1 + n2)
    tie_term = float(np.sum(ties**3 - ties))
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    mean = n1 * n2 / 2.0
    if variance <= 0:
        z, p = None, 1.0  # every value ties: no evidence either way
    else:
        z = (u - mean - 0.5) / math.sqrt(variance)
        p = float(ndtr(-z))
    return MannWhitney(
        u=u,
        z=z,
        p_slower=p,
        probability_of_superiority=u / (n1 * n2),
        candidate_events=n1,
        baseline_events=n2,
    )


def _latency(candidate: GroupStats, baseline: GroupStats, limits: Thresholds) -> CheckVerdict:
    check = "latency_p95"
    level = _level(limits.alpha)
    budget = limits.latency_budget_pct
    n_cand, n_base = candidate.latency_events, baseline.latency_events
    figures: dict[str, Any] = {
        "candidate_events": n_cand,
        "baseline_events": n_base,
        "min_events": limits.min_events,
        "budget_pct": budget,
        "confidence_level": 1 - limits.alpha,
        "alpha": limits.alpha,
        "sketch_relative_error": None,
        "candidate_p95_ms": None,
        "candidate_p95_low_ms": None,
        "candidate_p95_high_ms": None,
        "baseline_p95_ms": None,
        "baseline_p95_low_ms": None,
        "baseline_p95_high_ms": None,
        "ratio": None,
        "ratio_low": None,
        "ratio_high": None,
        "change_pct": None,
        "change_low_pct": None,
        "change_high_pct": None,
        "mw_u": None,
        "mw_z": None,
        "mw_p_slower": None,
        "mw_probability_of_superiority": None,
    }
    if not baseline.has_data:
        return _verdict(
            check, Outcome.INCONCLUSIVE, f"Latency not judged: {_NO_BASELINE}.", figures
        )
    if n_cand < limits.min_events or n_base < limits.min_events:
        summary = _too_few("latency readings", n_cand, n_base, limits.min_events)
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    assert candidate.latency is not None and baseline.latency is not None
    if not _same_mapping(candidate.latency, baseline.latency):
        summary = (
            "Latency not judged: the two latency sketches use different bucket mappings "
            f"(alpha {candidate.latency.alpha:g} vs {baseline.latency.alpha:g}), "
            "so their buckets cannot be compared."
        )
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    figures["sketch_relative_error"] = candidate.latency.alpha
    cand = quantile_interval(candidate.latency, q=0.95, alpha=limits.alpha)
    base = quantile_interval(baseline.latency, q=0.95, alpha=limits.alpha)
    test = mann_whitney(candidate.latency, baseline.latency)
    assert cand is not None and base is not None and test is not None
    figures.update(
        candidate_p95_ms=cand.value,
        candidate_p95_low_ms=cand.low,
        candidate_p95_high_ms=cand.high,
        baseline_p95_ms=base.value,
        baseline_p95_low_ms=base.low,
        baseline_p95_high_ms=base.high,
        mw_u=test.u,
        mw_z=test.z,
        mw_p_slower=test.p_slower,
        mw_probability_of_superiority=test.probability_of_superiority,
    )
    if base.value <= 0:
        summary = (
            f"Latency not judged: the baseline P95 is {_ms(base.value)} ms (readings at the "
            "sketch's zero bucket), so a relative change has no meaning."
        )
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    ratio = cand.value / base.value
    ratio_low = cand.low / base.high
    ratio_high = cand.high / base.low if base.low > 0 else math.inf
    figures.update(
        ratio=ratio,
        ratio_low=ratio_low,
        ratio_high=ratio_high,
        change_pct=(ratio - 1) * 100,
        change_low_pct=(ratio_low - 1) * 100,
        change_high_pct=(ratio_high - 1) * 100,
    )
    high_text = _signed_pct((ratio_high - 1) * 100) if math.isfinite(ratio_high) else "unbounded"
    body = (
        f"P95 {_ms(cand.value)} ms vs {_ms(base.value)} ms baseline "
        f"({_signed_pct((ratio - 1) * 100)}, {level} CI {_signed_pct((ratio_low - 1) * 100)} "
        f"to {high_text}); budget +{budget:g} %"
    )
    mw_text = (
        f"Mann-Whitney one-sided {_p(test.p_slower)}, candidate slower in "
        f"{test.probability_of_superiority * 100:.0f} % of pairs"
    )
    limit = 1 + budget / 100
    if ratio_low > limit and test.p_slower < limits.alpha:
        outcome, tail = Outcome.FAIL, f"over budget ({mw_text})"
    elif ratio_low > limit:
        outcome = Outcome.INCONCLUSIVE
        tail = (
            f"the P95 interval is over budget but the whole distribution is not slower ({mw_text})"
        )
    elif ratio_high <= limit:
        outcome, tail = Outcome.PASS, f"within budget ({mw_text})"
    else:
        outcome, tail = Outcome.INCONCLUSIVE, f"the interval straddles the budget ({mw_text})"
    return _verdict(check, outcome, f"{body}: {tail}.", figures)


# --- inference statistics -----------------------------------------------------------------


def _z(alpha: float) -> float:
    return float(ndtri(1 - alpha / 2))


def _interval_words(outcome: Outcome, what: str) -> str:
    """How an interval check's summary ends, for a ``what`` ("drop", "increase") vs its limit."""
    return {
        Outcome.FAIL: f"the {what} is over the limit",
        Outcome.PASS: "within the limit",
        Outcome.INCONCLUSIVE: "the interval straddles the limit",
    }[outcome]


def _interval_outcome(low: float, high: float, limit: float) -> Outcome:
    """``FAIL`` when the whole interval is past ``limit``, ``PASS`` when none of it is."""
    if low > limit:
        return Outcome.FAIL
    if high <= limit:
        return Outcome.PASS
    return Outcome.INCONCLUSIVE


def _bin_variance(bins: tuple[int, ...]) -> float | None:
    weights = np.asarray(bins, dtype=np.float64)
    n = float(weights.sum())
    if n < 2:
        return None
    mean = float(np.sum(weights * _CENTRES) / n)
    variance = float(np.sum(weights * (_CENTRES - mean) ** 2) / (n - 1))
    return max(variance, _BIN_WIDTH**2 / 12)


def _confidence_mean(
    candidate: GroupStats, baseline: GroupStats, limits: Thresholds
) -> CheckVerdict:
    check = "confidence_mean"
    level = _level(limits.alpha)
    figures: dict[str, Any] = {
        "candidate_events": candidate.count,
        "baseline_events": baseline.count,
        "min_events": limits.min_events,
        "max_drop": limits.max_confidence_drop,
        "confidence_level": 1 - limits.alpha,
        "candidate_mean": None,
        "baseline_mean": None,
        "candidate_sd": None,
        "baseline_sd": None,
        "drop": None,
        "drop_low": None,
        "drop_high": None,
    }
    if not baseline.has_data:
        summary = f"Mean confidence not judged: {_NO_BASELINE}."
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    if candidate.count < limits.min_events or baseline.count < limits.min_events:
        summary = _too_few("inference events", candidate.count, baseline.count, limits.min_events)
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    cand_mean = candidate.confidence_sum / candidate.count
    base_mean = baseline.confidence_sum / baseline.count
    figures.update(candidate_mean=cand_mean, baseline_mean=base_mean)
    cand_var, base_var = (
        _bin_variance(candidate.confidence_bins),
        _bin_variance(baseline.confidence_bins),
    )
    if cand_var is None or base_var is None:
        summary = (
            "Mean confidence not judged: a group has no confidence histogram to estimate the "
            "spread from."
        )
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    drop = base_mean - cand_mean
    half = _z(limits.alpha) * math.sqrt(cand_var / candidate.count + base_var / baseline.count)
    low, high = drop - half, drop + half
    figures.update(
        candidate_sd=math.sqrt(cand_var),
        baseline_sd=math.sqrt(base_var),
        drop=drop,
        drop_low=low,
        drop_high=high,
    )
    outcome = _interval_outcome(low, high, limits.max_confidence_drop)
    verdict_text = _interval_words(outcome, "drop")
    summary = (
        f"Mean confidence {cand_mean:.3f} vs {base_mean:.3f} baseline (drop {drop:+.3f}, "
        f"{level} CI {low:+.3f} to {high:+.3f}); largest allowed drop "
        f"{limits.max_confidence_drop:g}: {verdict_text}."
    )
    return _verdict(check, outcome, summary, figures)


def _class_mix(candidate: GroupStats, baseline: GroupStats, limits: Thresholds) -> CheckVerdict:
    check = "class_mix"
    n_cand = sum(candidate.class_counts.values())
    n_base = sum(baseline.class_counts.values())
    figures: dict[str, Any] = {
        "candidate_events": n_cand,
        "baseline_events": n_base,
        "min_events": limits.min_events,
        "max_class_shift": limits.max_class_shift,
        "alpha": limits.alpha,
        "classes": None,
        "jensen_shannon": None,
        "chi2_statistic": None,
        "chi2_p": None,
        "chi2_dof": None,
        "chi2_cells": None,
    }
    if not baseline.has_data:
        return _verdict(
            check, Outcome.INCONCLUSIVE, f"Class mix not judged: {_NO_BASELINE}.", figures
        )
    if n_cand < limits.min_events or n_base < limits.min_events:
        summary = _too_few("classified events", n_cand, n_base, limits.min_events)
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    # Most frequent first, so chi-square pooling (left to right) merges rare classes together
    # instead of folding a rare class into a common one; name breaks ties for determinism.
    names = sorted(
        set(candidate.class_counts) | set(baseline.class_counts),
        key=lambda name: (
            -(candidate.class_counts.get(name, 0) + baseline.class_counts.get(name, 0)),
            name,
        ),
    )
    cand = [float(candidate.class_counts.get(name, 0)) for name in names]
    base = [float(baseline.class_counts.get(name, 0)) for name in names]
    distance = jensen_shannon(base, cand)
    test = chi_square(reference_counts=base, current_counts=cand)
    figures.update(
        classes=len(names),
        jensen_shannon=distance,
        chi2_statistic=test.statistic,
        chi2_p=test.p_value,
        chi2_dof=test.dof,
        chi2_cells=test.bins,
    )
    body = (
        f"Class mix Jensen-Shannon distance {distance:.3f} over {len(names)} classes "
        f"(limit {limits.max_class_shift:g}; chi-square {_p(test.p_value)}, {test.dof} dof)"
    )
    if distance <= limits.max_class_shift:
        outcome, tail = Outcome.PASS, "within the limit"
    elif test.p_value < limits.alpha:
        outcome, tail = Outcome.FAIL, "the mix has shifted beyond the limit"
    else:
        outcome, tail = Outcome.INCONCLUSIVE, "over the limit but not statistically significant"
    return _verdict(check, outcome, f"{body}: {tail}.", figures)


def _share_difference(
    *, cand_hits: int, cand_n: int, base_hits: int, base_n: int, alpha: float
) -> tuple[float, float, float]:
    """(cand share - base share, Agresti-Caffo interval low, high)."""
    difference = cand_hits / cand_n - base_hits / base_n
    p1 = (cand_hits + 1) / (cand_n + 2)
    p2 = (base_hits + 1) / (base_n + 2)
    half = _z(alpha) * math.sqrt(p1 * (1 - p1) / (cand_n + 2) + p2 * (1 - p2) / (base_n + 2))
    centre = p1 - p2
    return difference, centre - half, centre + half


def _low_confidence(
    candidate: GroupStats, baseline: GroupStats, limits: Thresholds
) -> CheckVerdict:
    check = "low_confidence"
    # Whole bins only: round the threshold down to a bin edge (documented in the figures).
    below = math.floor(limits.low_confidence / _BIN_WIDTH + _EDGE_SLACK)
    edge = CONFIDENCE_EDGES[below]
    n_cand, n_base = sum(candidate.confidence_bins), sum(baseline.confidence_bins)
    figures: dict[str, Any] = {
        "candidate_events": n_cand,
        "baseline_events": n_base,
        "min_events": limits.min_events,
        "low_confidence": limits.low_confidence,
        "counted_below": edge,
        "bin_edge_rounding": "threshold rounded down to a histogram bin edge",
        "max_increase": limits.max_low_confidence_increase,
        "confidence_level": 1 - limits.alpha,
        "candidate_low": None,
        "baseline_low": None,
        "candidate_share": None,
        "baseline_share": None,
        "increase": None,
        "increase_low": None,
        "increase_high": None,
        "interval": "agresti_caffo",
    }
    if not baseline.has_data:
        summary = f"Low-confidence share not judged: {_NO_BASELINE}."
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    if below == 0:
        summary = (
            f"Low-confidence share not judged: the threshold {limits.low_confidence:g} is below "
            f"the first histogram edge ({_BIN_WIDTH:g}), so no bin lies wholly under it."
        )
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    if n_cand < limits.min_events or n_base < limits.min_events:
        summary = _too_few("confidence readings", n_cand, n_base, limits.min_events)
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    cand_low = sum(candidate.confidence_bins[:below])
    base_low = sum(baseline.confidence_bins[:below])
    increase, low, high = _share_difference(
        cand_hits=cand_low, cand_n=n_cand, base_hits=base_low, base_n=n_base, alpha=limits.alpha
    )
    figures.update(
        candidate_low=cand_low,
        baseline_low=base_low,
        candidate_share=cand_low / n_cand,
        baseline_share=base_low / n_base,
        increase=increase,
        increase_low=low,
        increase_high=high,
    )
    outcome = _interval_outcome(low, high, limits.max_low_confidence_increase)
    verdict_text = _interval_words(outcome, "increase")
    rounded = "" if math.isclose(edge, limits.low_confidence) else f", rounded down to {edge:g}"
    summary = (
        f"Confidence below {edge:g}{rounded} in {_pct(cand_low / n_cand)} of candidate events "
        f"vs {_pct(base_low / n_base)} baseline ({_pp(increase)}, {_level(limits.alpha)} CI "
        f"{_pp(low)} to {_pp(high)}); largest allowed increase "
        f"{limits.max_low_confidence_increase * 100:g} pp: {verdict_text}."
    )
    return _verdict(check, outcome, summary, figures)


# --- health and deployment ----------------------------------------------------------------


def _throttling(candidate: GroupStats, baseline: GroupStats, limits: Thresholds) -> CheckVerdict:
    check = "throttling"
    n_cand, n_base = candidate.health_samples, baseline.health_samples
    figures: dict[str, Any] = {
        "candidate_samples": n_cand,
        "baseline_samples": n_base,
        "candidate_throttled": candidate.throttled_samples,
        "baseline_throttled": baseline.throttled_samples,
        "min_health_samples": limits.min_health_samples,
        "max_increase": limits.max_throttling_increase,
        "confidence_level": 1 - limits.alpha,
        "candidate_share": None,
        "baseline_share": None,
        "increase": None,
        "increase_low": None,
        "increase_high": None,
        "interval": "agresti_caffo",
    }
    if not baseline.has_data:
        return _verdict(
            check, Outcome.INCONCLUSIVE, f"Throttling not judged: {_NO_BASELINE}.", figures
        )
    if n_cand < limits.min_health_samples or n_base < limits.min_health_samples:
        summary = _too_few("health samples", n_cand, n_base, limits.min_health_samples)
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    increase, low, high = _share_difference(
        cand_hits=candidate.throttled_samples,
        cand_n=n_cand,
        base_hits=baseline.throttled_samples,
        base_n=n_base,
        alpha=limits.alpha,
    )
    cand_share = candidate.throttled_samples / n_cand
    base_share = baseline.throttled_samples / n_base
    figures.update(
        candidate_share=cand_share,
        baseline_share=base_share,
        increase=increase,
        increase_low=low,
        increase_high=high,
    )
    outcome = _interval_outcome(low, high, limits.max_throttling_increase)
    verdict_text = _interval_words(outcome, "increase")
    summary = (
        f"Throttled in {_pct(cand_share)} of candidate health samples vs {_pct(base_share)} "
        f"baseline ({_pp(increase)}, {_level(limits.alpha)} CI {_pp(low)} to {_pp(high)}); "
        f"largest allowed increase {limits.max_throttling_increase * 100:g} pp: {verdict_text}."
    )
    return _verdict(check, outcome, summary, figures)


def _failed_loads(*, failed_loads: int, devices: int, limits: Thresholds) -> CheckVerdict:
    check = "failed_loads"
    figures: dict[str, Any] = {
        "failed_loads": failed_loads,
        "devices": devices,
        "share": None,
        "max_share": limits.max_failed_load_share,
        "statistical": False,
    }
    if devices == 0:
        summary = "Failed loads not judged: no device of the wave has been notified yet."
        return _verdict(check, Outcome.INCONCLUSIVE, summary, figures)
    share = failed_loads / devices
    figures["share"] = share
    over = share > limits.max_failed_load_share
    summary = (
        f"{failed_loads:,} of {devices:,} notified devices failed to load the candidate "
        f"({_pct(share)}; limit {_pct(limits.max_failed_load_share)}, a plain count, not a "
        f"statistical test): {'over the limit' if over else 'within the limit'}."
    )
    return _verdict(check, Outcome.FAIL if over else Outcome.PASS, summary, figures)


def _wilson(hits: int, n: int, alpha: float) -> tuple[float, float]:
    z = _z(alpha)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def reviewed_accuracy(
    *,
    candidate_correct: int,
    candidate_reviews: int,
    baseline_correct: int,
    baseline_reviews: int,
    limits: Thresholds,
) -> CheckVerdict | None:
    """The reviewed-accuracy gate; None when the rollout leaves it off (``min_reviews`` 0).

    Below ``min_reviews`` reviews of the candidate it is *not evaluated* (``INCONCLUSIVE`` with
    ``figures["evaluated"]`` False; the engine does not hold a wave on it, and it never passes).
    From there: ``FAIL`` when the candidate's Wilson interval lies wholly under the floor or the
    Agresti-Caffo interval of (candidate - baseline) lies wholly under ``-max drop``; ``PASS``
    when the interval is wholly above both; else ``INCONCLUSIVE``. A baseline needs
    ``min_reviews`` reviews too; without one only the floor judges, and with no floor either the
    gate is not evaluated (nothing to compare with is no pass).
    """
    if limits.min_reviews == 0:
        return None
    for name, hits, n in (
        ("candidate", candidate_correct, candidate_reviews),
        ("baseline", baseline_correct, baseline_reviews),
    ):
        if not _is_int(hits) or not _is_int(n) or not 0 <= hits <= n:
            raise ValueError(f"{name}: need 0 <= correct <= reviews, got {hits} of {n}")
    needed = limits.min_reviews
    figures: dict[str, Any] = {
        "evaluated": False,
        "candidate_reviews": candidate_reviews,
        "baseline_reviews": baseline_reviews,
        "min_reviews": needed,
        "candidate_accuracy": candidate_correct / candidate_reviews if candidate_reviews else None,
        "baseline_accuracy": baseline_correct / baseline_reviews if baseline_reviews else None,
        "max_drop": limits.max_reviewed_accuracy_drop,
        "floor": limits.reviewed_accuracy_floor,
    }
    if candidate_reviews < needed:
        summary = (
            f"Reviewed accuracy not evaluated: only {candidate_reviews:,} review"
            f"{'' if candidate_reviews == 1 else 's'} of the candidate at the wave's sites "
            f"(need {needed:,})."
        )
        return _verdict(REVIEW_CHECK, Outcome.INCONCLUSIVE, summary, figures)
    has_baseline = baseline_reviews >= needed
    floor = limits.reviewed_accuracy_floor
    if not has_baseline and floor <= 0:
        summary = (
            f"Reviewed accuracy not evaluated: {baseline_reviews:,} reviews of the previous "
            f"version at these sites (need {needed:,}) and no accuracy floor set."
        )
        return _verdict(REVIEW_CHECK, Outcome.INCONCLUSIVE, summary, figures)
    figures["evaluated"] = True
    low, high = _wilson(candidate_correct, candidate_reviews, limits.alpha)
    figures["candidate_ci"] = [low, high]
    outcomes = []
    parts = [
        f"Candidate reviewed accuracy {_pct(candidate_correct / candidate_reviews)} over "
        f"{candidate_reviews:,} reviews ({_level(limits.alpha)} CI {_pct(low)} to {_pct(high)})"
    ]
    if floor > 0:
        outcomes.append(
            Outcome.FAIL if high < floor else Outcome.PASS if low >= floor else Outcome.INCONCLUSIVE
        )
        parts.append(f"floor {_pct(floor)}")
    if has_baseline:
        difference, d_low, d_high = _share_difference(
            cand_hits=candidate_correct,
            cand_n=candidate_reviews,
            base_hits=baseline_correct,
            base_n=baseline_reviews,
            alpha=limits.alpha,
        )
        figures["difference"] = difference
        figures["difference_ci"] = [d_low, d_high]
        # The drop is -(difference); fail when even its smallest value is over the limit.
        outcomes.append(_interval_outcome(-d_high, -d_low, limits.max_reviewed_accuracy_drop))
        parts.append(
            f"baseline {_pct(baseline_correct / baseline_reviews)} over {baseline_reviews:,} "
            f"({_pp(difference)}, CI {_pp(d_low)} to {_pp(d_high)}; largest allowed drop "
            f"{limits.max_reviewed_accuracy_drop * 100:g} pp)"
        )
    outcome = (
        Outcome.FAIL
        if Outcome.FAIL in outcomes
        else Outcome.INCONCLUSIVE
        if Outcome.INCONCLUSIVE in outcomes
        else Outcome.PASS
    )
    words = {
        Outcome.FAIL: "worse than allowed",
        Outcome.PASS: "within the limits",
        Outcome.INCONCLUSIVE: "the interval straddles a limit",
    }[outcome]
    return _verdict(REVIEW_CHECK, outcome, "; ".join(parts) + f": {words}.", figures)


def counts_in_overall(verdict: CheckVerdict) -> bool:
    """Whether a verdict takes part in the wave's outcome: a gate that was not evaluated does
    not (it neither holds the wave nor passes it)."""
    if verdict.check != REVIEW_CHECK:
        return True
    return verdict.figures.get("evaluated") is True


# --- entry points -------------------------------------------------------------------------


def analyse(
    *,
    candidate: GroupStats,
    baseline: GroupStats,
    failed_loads: int,
    devices: int,
    thresholds: Thresholds,
) -> list[CheckVerdict]:
    """Judge a wave: one verdict per check, in the order of :data:`CHECKS`.

    ``devices`` is the number of wave devices notified of the candidate and ``failed_loads``
    how many of them reported a failed load (``ValueError`` if negative or more than
    ``devices``: that is a counting bug upstream). Missing data never raises: it gives an
    ``INCONCLUSIVE`` verdict that says what is missing.
    """
    for name, value in (("failed_loads", failed_loads), ("devices", devices)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    if failed_loads > devices:
        raise ValueError(f"failed_loads ({failed_loads}) exceeds notified devices ({devices})")
    return [
        _latency(candidate, baseline, thresholds),
        _confidence_mean(candidate, baseline, thresholds),
        _class_mix(candidate, baseline, thresholds),
        _low_confidence(candidate, baseline, thresholds),
        _throttling(candidate, baseline, thresholds),
        _failed_loads(failed_loads=int(failed_loads), devices=int(devices), limits=thresholds),
    ]


def overall(verdicts: Iterable[CheckVerdict]) -> Outcome:
    """Any ``FAIL`` fails the wave; else any ``INCONCLUSIVE`` (or no verdict at all) leaves it
    inconclusive; only a full set of passes passes."""
    outcomes = [verdict.outcome for verdict in verdicts]
    if Outcome.FAIL in outcomes:
        return Outcome.FAIL
    if not outcomes or Outcome.INCONCLUSIVE in outcomes:
        return Outcome.INCONCLUSIVE
    return Outcome.PASS
