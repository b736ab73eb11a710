"""Drift and health signals computed from rolled-up histograms, never from raw events.

Gateways post inference and health events; the rollup job keeps, per device/site x model
version x minute/hour, a 20-bin confidence histogram, class counts by class name and health
minute rows. The raw values are gone by the time a signal runs, so every statistic here takes
*counts*: the same numbers whether a window is one device-hour or a fleet-day of merged rollups.

Defaults follow Evidently and NannyML, so an operator who knows those tools reads the same
numbers: Jensen-Shannon distance >= 0.1, PSI 0.1 warn / 0.25 alert, Wasserstein normalised by
the reference standard deviation >= 0.1 for windows over 1,000 events, a chi-square test at
p < 0.05 for smaller windows, at least 500 events to evaluate at all, and an alert after two
consecutive breaches (one noisy window is not an incident).

Choices
    * **PSI zero shares.** A share of exactly zero makes ``ln(c / r)`` infinite, so zero shares
      (after normalising) are replaced by ``epsilon = 1e-4`` without renormalising, as Evidently
      does. A class that appears only in the window therefore contributes a large but finite
      term.
    * **Chi-square sparse bins.** Bins whose expected count is below 5 are pooled with their
      right-hand neighbours (Cochran's rule), walking from the low-confidence end; a remainder
      that never reaches 5 joins the last pooled bin. Pooling was chosen over additive smoothing
      because a smoothed empty reference bin has an expected count far below 1 with a large
      validation set, so one stray event in it would be "significant" and page someone.
      The test is two-sample (homogeneity, :func:`chi_square`), so pooling follows both
      rows: counts that all lie in one range on both sides pool to a single bin and cannot be
      tested; :func:`confidence_drift` then says "not evaluated" instead of "clear".
    * **"Not evaluated" is not "clear".** Too few events or no usable baseline gives a
      verdict that neither extends nor resets a breach streak (:func:`next_alert_action`).

Pure: numpy and ``scipy.special`` only (no Django, no models), so tasks, views and tests share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.special import chdtrc, rel_entr

__all__ = [
    "CONFIDENCE_BINS",
    "CONFIDENCE_EDGES",
    "DEFAULT_POLICY",
    "OTHER_CLASS",
    "ChiSquare",
    "MinuteHealth",
    "SignalPolicyValues",
    "Verdict",
    "baseline_from_validation",
    "chi_square",
    "class_drift",
    "confidence_drift",
    "estimated_accuracy",
    "jensen_shannon",
    "latency_budget",
    "next_alert_action",
    "normalised_wasserstein",
    "pool_sparse_bins",
    "population_stability_index",
    "throttling",
]

CONFIDENCE_BINS = 20
# Exactly the edges np.histogram(..., bins=20, range=(0, 1)) uses (it calls linspace too), so a
# validation baseline's stored edges compare equal to these.
CONFIDENCE_EDGES: tuple[float, ...] = tuple(
    float(edge) for edge in np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
)
OTHER_CLASS = "(other)"
MIN_EXPECTED = 5.0  # Cochran's rule of thumb for the chi-square approximation
_STD_FLOOR = 0.001  # Evidently's floor: a one-bin reference would otherwise divide by zero
_EDGE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SignalPolicyValues:
    """The thresholds one organisation's signals use (a Django model mirrors these fields).

    Kept as a plain value so the statistics can be computed and tested without a database;
    :meth:`from_object` reads a model row (or anything with the same attribute names).
    """

    window_minutes: int = 60
    min_events: int = 500
    large_window_events: int = 1000
    js_threshold: float = 0.1
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    wasserstein_threshold: float = 0.1
    chi2_p_value: float = 0.05
    consecutive_breaches: int = 2
    low_confidence: float = 0.5
    baseline_days: int = 1
    throttle_share: float = 0.5
    temperature_rise_c: float = 10.0

    def __post_init__(self) -> None:
        # A nonsensical policy would silently never (or always) alert; refuse it loudly.
        for name in ("window_minutes", "min_events", "consecutive_breaches", "baseline_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.large_window_events < 0:
            raise ValueError("large_window_events must not be negative")
        for name in ("js_threshold", "psi_warn", "psi_alert", "wasserstein_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.psi_warn > self.psi_alert:
            raise ValueError("psi_warn must not exceed psi_alert")
        if not 0 < self.chi2_p_value < 1:
            raise ValueError("chi2_p_value must lie strictly between 0 and 1")
        if not 0 <= self.low_confidence <= 1:
            raise ValueError("low_confidence must lie in [0, 1]")
        if not 0 < self.throttle_share <= 1:
            raise ValueError("throttle_share must lie in (0, 1]")
        if not (math.isfinite(self.temperature_rise_c) and self.temperature_rise_c > 0):
            raise ValueError("temperature_rise_c must be a positive number")

    @classmethod
    def from_object(cls, obj: object | None) -> SignalPolicyValues:
        """Read the same-named attributes of ``obj`` (e.g. a policy row).

        ``None`` (no row), a missing attribute or an attribute set to ``None`` falls back to
        the default, so an organisation that never edited its policy gets the defaults.
        Values are coerced to the field's type (a ``Decimal`` column becomes a float).
        """
        if obj is None:
            return cls()
        values: dict[str, Any] = {}
        for spec in fields(cls):
            value = getattr(obj, spec.name, None)
            if value is None:
                continue
            default = spec.default
            values[spec.name] = int(value) if isinstance(default, int) else float(value)
        return cls(**values)


DEFAULT_POLICY = SignalPolicyValues()


# --- statistics on histograms -------------------------------------------------------------


def _counts(values: Sequence[float] | np.ndarray, *, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of counts")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite, non-negative counts")
    return array


def _pair(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray]:
    ref = _counts(reference, name="reference")
    cur = _counts(current, name="current")
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} bins but current has {cur.size}")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both histograms need a positive total")
    return ref, cur


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon *distance* (natural log, in [0, sqrt(ln 2)]) between two histograms.

    Counts or shares are accepted (each is normalised). Computed the way
    ``scipy.spatial.distance.jensenshannon`` does, step for step, so the figure shown matches
    what an analyst gets from scipy on the same counts; symmetric and finite even when one
    side has empty bins, which is why it is the primary class-mix statistic.
    """
    p, q = _pair(reference, current)
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / 2.0
    return float(np.sqrt(max(float(divergence), 0.0)))


def population_stability_index(
    reference: Sequence[float], current: Sequence[float], *, epsilon: float = 1e-4
) -> float:
    """PSI = sum((c - r) * ln(c / r)) over the shares of each histogram.

    Zero shares are replaced by ``epsilon`` (not renormalised, as Evidently does) because
    ``ln(0)`` is infinite: a class the baseline never saw then adds a large, finite term.
    """
    if not epsilon > 0:
        raise ValueError("epsilon must be positive")
    ref, cur = _pair(reference, current)
    r = ref / ref.sum()
    c = cur / cur.sum()
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return float(np.sum((c - r) * np.log(c / r)))


def _centres(edges: Sequence[float], bins: int) -> np.ndarray:
    array = np.asarray(edges, dtype=np.float64)
    if array.ndim != 1 or array.size != bins + 1:
        raise ValueError(f"{bins} bins need {bins + 1} edges, got {array.size}")
    if not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise ValueError("edges must be finite and strictly increasing")
    return (array[:-1] + array[1:]) / 2.0


def _weighted_mean(centres: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sum(centres * weights) / np.sum(weights))


def normalised_wasserstein(
    *,
    edges: Sequence[float],
    reference_counts: Sequence[float],
    current_counts: Sequence[float],
) -> float:
    """Earth mover's distance between two histograms, in units of the reference's spread.

    Each histogram is a distribution on its bin centres weighted by its counts, so the raw
    distance equals ``scipy.stats.wasserstein_distance(centres, centres, ref, cur)``. Dividing
    by the reference's weighted standard deviation (floored at 0.001, as Evidently does) makes
    one threshold fit models whose confidences are tightly or widely spread.
    """
    ref, cur = _pair(reference_counts, current_counts)
    centres = _centres(edges, ref.size)
    # 1-D Wasserstein-1 is the integral of |CDF_ref - CDF_cur|; both CDFs step at the same
    # (sorted) centres, so it is a sum over the gaps between consecutive centres.
    gap_cdf = np.abs(np.cumsum(ref / ref.sum()) - np.cumsum(cur / cur.sum()))[:-1]
    distance = float(np.sum(gap_cdf * np.diff(centres)))
    mean = _weighted_mean(centres, ref)
    std = math.sqrt(float(np.sum(ref * (centres - mean) ** 2) / np.sum(ref)))
    return distance / max(std, _STD_FLOOR)


@dataclass(frozen=True)
class ChiSquare:
    """A chi-square homogeneity result: ``bins`` after pooling, ``dof = bins - 1``."""

    statistic: float
    p_value: float
    dof: int
    bins: int


def pool_sparse_bins(
    *,
    expected: Sequence[float],
    observed: Sequence[float],
    min_expected: float = MIN_EXPECTED,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent bins until each pooled bin expects at least ``min_expected`` events.

    The chi-square approximation is poor below about 5 expected events per bin, and an empty
    reference bin (expected 0) cannot be tested at all. Walking left to right, bins accumulate
    until the expected count reaches ``min_expected``; a remainder that never does joins the
    last pooled bin. Returns ``(pooled_expected, pooled_observed)``.
    """
    exp = _counts(expected, name="expected")
    obs = _counts(observed, name="observed")
    if exp.shape != obs.shape:
        raise ValueError("expected and observed need the same number of bins")
    pooled_exp: list[float] = []
    pooled_obs: list[float] = []
    acc_exp = acc_obs = 0.0
    pending = False
    for e, o in zip(exp.tolist(), obs.tolist(), strict=True):
        acc_exp += e
        acc_obs += o
        pending = True
        if acc_exp >= min_expected:
            pooled_exp.append(acc_exp)
            pooled_obs.append(acc_obs)
            acc_exp = acc_obs = 0.0
            pending = False
    if pending:
        if pooled_exp:
            pooled_exp[-1] += acc_exp
            pooled_obs[-1] += acc_obs
        else:
            pooled_exp.append(acc_exp)
            pooled_obs.append(acc_obs)
    return np.asarray(pooled_exp), np.asarray(pooled_obs)


def chi_square(*, reference_counts: Sequence[float], current_counts: Sequence[float]) -> ChiSquare:
    """Do the reference and the current window come from the same distribution?

    A two-sample chi-square test of homogeneity on the 2 x k table of counts (what
    ``scipy.stats.chi2_contingency(table, correction=False)`` computes), not a goodness-of-fit
    test against the reference's shares: the baseline is itself a sample (a validation set of a
    few thousand inputs, or a device's first day), and treating its shares as exact makes a
    window of 500-1,000 events from the *same* distribution "drift" in about one window in five
    with a 5,000-event baseline (measured by simulation) instead of one in twenty.

    Bins are pooled left to right until every cell expects at least ``MIN_EXPECTED`` events
    (:func:`pool_sparse_bins` on the smaller row's expected counts). With fewer than two pooled
    bins there is nothing to test: ``dof = 0``, statistic 0, p 1.
    """
    ref, cur = _pair(reference_counts, current_counts)
    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    total = n_ref + n_cur
    if n_ref <= 0 or n_cur <= 0:
        return ChiSquare(statistic=0.0, p_value=1.0, dof=0, bins=0)
    smaller_row = (ref + cur) * (min(n_ref, n_cur) / total)
    _, pooled_ref = pool_sparse_bins(expected=smaller_row, observed=ref)
    _, pooled_cur = pool_sparse_bins(expected=smaller_row, observed=cur)
    bins = int(pooled_ref.size)
    if bins < 2:
        return ChiSquare(statistic=0.0, p_value=1.0, dof=0, bins=bins)
    table = np.vstack([pooled_ref, pooled_cur])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = bins - 1
    return ChiSquare(statistic=statistic, p_value=float(chdtrc(dof, statistic)), dof=dof, bins=bins)


# --- verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of one signal on one window, with every figure behind it.

    ``evaluated=False`` (too few events, no baseline) is neither a breach nor a clear: it
    leaves an alert streak as it was. ``value``/``threshold`` are the deciding statistic named
    by ``statistic``; ``statistics`` holds all figures computed (JSON-serialisable).
    """

    evaluated: bool
    breached: bool
    warning: bool
    value: float | None
    threshold: float | None
    statistic: str
    statistics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    events: int = 0


def _not_evaluated(*, statistic: str, reason: str, events: int, **figures: Any) -> Verdict:
    return Verdict(
        evaluated=False,
        breached=False,
        warning=False,
        value=None,
        threshold=None,
        statistic=statistic,
        statistics={"events": events, **figures},
        reason=reason,
        events=events,
    )


def _too_few(events: int, minimum: int) -> str:
    return f"not evaluated: {events} events in the window, at least {minimum} are needed"


def class_drift(
    *,
    baseline_counts: Mapping[str, float],
    window_counts: Mapping[str, int],
    labels: Sequence[str],
    policy: SignalPolicyValues = DEFAULT_POLICY,
) -> Verdict:
    """Has the mix of predicted classes moved away from the validation baseline?

    Classes are laid out in ``labels`` order (the model's contract); names outside ``labels``
    (a gateway reporting a class the model does not have, a renamed label) are pooled into one
    ``"(other)"`` category rather than dropped, so they count as drift. Breach on
    Jensen-Shannon >= ``js_threshold`` or PSI >= ``psi_alert``; PSI in [warn, alert) without a
    breach is a warning.
    """
    names = list(labels)
    if len(set(names)) != len(names):
        raise ValueError("labels must be distinct class names")
    known = set(names)
    reference = [float(baseline_counts.get(name, 0.0)) for name in names]
    current = [float(window_counts.get(name, 0)) for name in names]
    other_ref = sum(float(v) for k, v in baseline_counts.items() if k not in known)
    other_cur = sum(float(v) for k, v in window_counts.items() if k not in known)
    if other_ref or other_cur:
        reference.append(other_ref)
        current.append(other_cur)
    ref = _counts(reference or [0.0], name="baseline_counts")
    cur = _counts(current or [0.0], name="window_counts")
    events = round(float(cur.sum()))
    figures = {"baseline_events": float(ref.sum()), "other_events": round(other_cur)}
    if ref.sum() <= 0:
        return _not_evaluated(
            statistic="jensen_shannon",
            reason="not evaluated: the baseline has no class counts",
            events=events,
            **figures,
        )
    if events < policy.min_events:
        return _not_evaluated(
            statistic="jensen_shannon",
            reason=_too_few(events, policy.min_events),
            events=events,
            **figures,
        )
    js = jensen_shannon(ref, cur)
    psi = population_stability_index(ref, cur)
    statistics = {"events": events, **figures, "jensen_shannon": js, "psi": psi}
    common = {"statistics": statistics, "events": events, "evaluated": True}
    if js >= policy.js_threshold:
        return Verdict(
            breached=True,
            warning=False,
            value=js,
            threshold=policy.js_threshold,
            statistic="jensen_shannon",
            reason=(
                f"class mix drifted: Jensen-Shannon distance {js:.3f} >= {policy.js_threshold:g}"
            ),
            **common,
        )
    if psi >= policy.psi_alert:
        return Verdict(
            breached=True,
            warning=False,
            value=psi,
            threshold=policy.psi_alert,
            statistic="psi",
            reason=f"class mix drifted: PSI {psi:.3f} >= {policy.psi_alert:g}",
            **common,
        )
    if psi >= policy.psi_warn:
        return Verdict(
            breached=False,
            warning=True,
            value=psi,
            threshold=policy.psi_warn,
            statistic="psi",
            reason=(
                f"class mix shifting: PSI {psi:.3f} >= {policy.psi_warn:g} "
                f"(alert at {policy.psi_alert:g})"
            ),
            **common,
        )
    return Verdict(
        breached=False,
        warning=False,
        value=js,
        threshold=policy.js_threshold,
        statistic="jensen_shannon",
        reason="within threshold",
        **common,
    )


def confidence_drift(
    *,
    baseline_bins: Sequence[float],
    window_bins: Sequence[int],
    policy: SignalPolicyValues = DEFAULT_POLICY,
) -> Verdict:
    """Has the distribution of top-1 confidence moved away from the validation baseline?

    Both sides are :data:`CONFIDENCE_BINS`-bin histograms on :data:`CONFIDENCE_EDGES`. A test
    of significance on a large window flags differences too small to matter, so windows over
    ``large_window_events`` use the normalised Wasserstein distance (an effect size); windows
    of ``min_events`` up to that use the chi-square test.
    """
    ref = _counts(baseline_bins, name="baseline_bins")
    cur = _counts(window_bins, name="window_bins")
    for name, array in (("baseline_bins", ref), ("window_bins", cur)):
        if array.size != CONFIDENCE_BINS:
            raise ValueError(f"{name} must have {CONFIDENCE_BINS} bins, got {array.size}")
    centres = _centres(CONFIDENCE_EDGES, CONFIDENCE_BINS)
    events = round(float(cur.sum()))
    figures: dict[str, Any] = {"baseline_events": float(ref.sum())}
    if ref.sum() > 0:
        figures["mean_confidence_baseline"] = _weighted_mean(centres, ref)
    if events > 0:
        figures["mean_confidence_window"] = _weighted_mean(centres, cur)
    if ref.sum() <= 0:
        return _not_evaluated(
            statistic="wasserstein_norm",
            reason="not evaluated: the baseline has no confidence histogram counts",
            events=events,
            **figures,
        )
    if events < policy.min_events:
        return _not_evaluated(
            statistic="chi2_p",
            reason=_too_few(events, policy.min_events),
            events=events,
            **figures,
        )
    if events > policy.large_window_events:
        distance = normalised_wasserstein(
            edges=CONFIDENCE_EDGES, reference_counts=ref, current_counts=cur
        )
        breached = distance >= policy.wasserstein_threshold
        return Verdict(
            evaluated=True,
            breached=breached,
            warning=False,
            value=distance,
            threshold=policy.wasserstein_threshold,
            statistic="wasserstein_norm",
            statistics={"events": events, **figures, "wasserstein_norm": distance},
            reason=(
                f"confidence drifted: normalised Wasserstein {distance:.3f} >= "
                f"{policy.wasserstein_threshold:g}"
                if breached
                else "within threshold"
            ),
            events=events,
        )
    test = chi_square(reference_counts=ref, current_counts=cur)
    chi_figures = {
        **figures,
        "chi2_statistic": test.statistic,
        "chi2_p": test.p_value,
        "chi2_dof": test.dof,
        "chi2_bins": test.bins,
    }
    if test.dof == 0:
        return _not_evaluated(
            statistic="chi2_p",
            reason=(
                "not evaluated: the baseline and the window both lie in one confidence range, "
                "so a chi-square test has nothing to compare"
            ),
            events=events,
            **chi_figures,
        )
    breached = test.p_value < policy.chi2_p_value
    return Verdict(
        evaluated=True,
        breached=breached,
        warning=False,
        value=test.p_value,
        threshold=policy.chi2_p_value,
        statistic="chi2_p",
        statistics={"events": events, **chi_figures},
        reason=(
            f"confidence drifted: chi-square p = {test.p_value:.3g} < {policy.chi2_p_value:g} "
            f"({test.bins} bins)"
            if breached
            else "within threshold"
        ),
        events=events,
    )


def latency_budget(
    *,
    p95_ms: float | None,
    p50_ms: float | None,
    events: int,
    budget_ms: float | None,
    min_events: int = 20,
) -> Verdict:
    """Is the window's p95 latency over the deployment's budget?

    No budget means nothing to judge; under ``min_events`` a p95 is one or two samples and
    would alert on a single slow call.
    """
    figures = {"p95_ms": p95_ms, "p50_ms": p50_ms, "budget_ms": budget_ms}
    if budget_ms is None:
        return _not_evaluated(
            statistic="p95_ms",
            reason="not evaluated: no latency budget is set",
            events=events,
            **figures,
        )
    if events < min_events or p95_ms is None:
        return _not_evaluated(
            statistic="p95_ms", reason=_too_few(events, min_events), events=events, **figures
        )
    breached = p95_ms > budget_ms
    return Verdict(
        evaluated=True,
        breached=breached,
        warning=False,
        value=float(p95_ms),
        threshold=float(budget_ms),
        statistic="p95_ms",
        statistics={"events": events, **figures},
        reason=(
            f"p95 latency {p95_ms:.1f} ms is over the {budget_ms:g} ms budget"
            if breached
            else "within threshold"
        ),
        events=events,
    )


@dataclass(frozen=True)
class MinuteHealth:
    """One health minute row of a device (``samples=0`` for a minute with no reports)."""

    samples: int
    throttled_samples: int
    temperature_count: int
    temperature_sum: float
    temperature_max: float | None


def throttling(
    *, minutes: Sequence[MinuteHealth], policy: SignalPolicyValues = DEFAULT_POLICY
) -> Verdict:
    """Is the device throttling, or heating up, over one window of consecutive minutes?

    The throttled share is pooled over the window (sum throttled / sum samples), so a minute
    with one report does not weigh as much as a full one. The temperature rise compares the
    mean of the last minute that reported a temperature with the first such minute: a device
    heating by 10 degrees in ten minutes will throttle soon even if it does not yet.
    """
    for minute in minutes:
        if minute.samples < 0 or not 0 <= minute.throttled_samples <= minute.samples:
            raise ValueError("throttled_samples must lie between 0 and samples")
        if minute.temperature_count < 0:
            raise ValueError("temperature_count must not be negative")
    samples = sum(minute.samples for minute in minutes)
    throttled = sum(minute.throttled_samples for minute in minutes)
    hot = [minute for minute in minutes if minute.temperature_count > 0]
    maxima = [m.temperature_max for m in minutes if m.temperature_max is not None]
    rise = (
        hot[-1].temperature_sum / hot[-1].temperature_count
        - hot[0].temperature_sum / hot[0].temperature_count
        if hot
        else None
    )
    figures: dict[str, Any] = {
        "throttled_samples": throttled,
        "minutes": len(minutes),
        "minutes_with_samples": sum(1 for minute in minutes if minute.samples > 0),
        "temperature_rise_c": rise,
        "temperature_max_c": max(maxima) if maxima else None,
    }
    if samples <= 0:
        return _not_evaluated(
            statistic="throttled_share",
            reason="not evaluated: no health samples in the window",
            events=0,
            **figures,
        )
    share = throttled / samples
    statistics = {"events": samples, "throttled_share": share, **figures}
    common = {"evaluated": True, "warning": False, "statistics": statistics, "events": samples}
    if share >= policy.throttle_share:
        return Verdict(
            breached=True,
            value=share,
            threshold=policy.throttle_share,
            statistic="throttled_share",
            reason=f"throttled in {share:.0%} of samples (limit {policy.throttle_share:.0%})",
            **common,
        )
    if rise is not None and rise >= policy.temperature_rise_c:
        return Verdict(
            breached=True,
            value=rise,
            threshold=policy.temperature_rise_c,
            statistic="temperature_rise_c",
            reason=(
                f"temperature rose {rise:.1f} degC in the window "
                f"(limit {policy.temperature_rise_c:g} degC)"
            ),
            **common,
        )
    return Verdict(
        breached=False,
        value=share,
        threshold=policy.throttle_share,
        statistic="throttled_share",
        reason="within threshold",
        **common,
    )


def next_alert_action(
    *,
    streak: int,
    verdict: Verdict,
    alert_live: bool,
    policy: SignalPolicyValues = DEFAULT_POLICY,
) -> tuple[int, str | None]:
    """Advance the breach streak of one signal and say what to do with its alert.

    Returns ``(new_streak, action)``, action one of ``"open"``, ``"update"``, ``"resolve"`` or
    ``None``. Only ``consecutive_breaches`` breaches in a row open an alert, so one noisy
    window does not page; a clear window resets the streak and resolves a live alert; a window
    that could not be evaluated changes nothing (a quiet night neither confirms nor clears).
    """
    if not verdict.evaluated:
        return streak, None
    if verdict.breached:
        new_streak = streak + 1
        if alert_live:
            return new_streak, "update"
        if new_streak >= policy.consecutive_breaches:
            return new_streak, "open"
        return new_streak, None
    return 0, ("resolve" if alert_live else None)


def estimated_accuracy(*, confidence_sum: float, count: int) -> float | None:
    """Mean top-1 confidence: the accuracy to expect if the model is calibrated.

    Field data rarely has labels, so this is the only accuracy figure most windows have; the
    validation run's ECE says how far to trust it. ``None`` for an empty window.
    """
    if count <= 0:
        return None
    return float(confidence_sum) / count


def _count_list(values: Any, *, size: int) -> list[int] | None:
    if not isinstance(values, Sequence) or isinstance(values, str | bytes) or len(values) != size:
        return None
    out: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value) or value < 0 or value != int(value):
            return None
        out.append(int(value))
    return out


def baseline_from_validation(
    drift_baseline: Mapping[str, Any] | None, labels: Sequence[str]
) -> tuple[dict[str, float], list[int]] | None:
    """Turn a validation run's stored ``drift_baseline`` into what the drift signals compare.

    Returns ``(class counts by name, confidence bin counts)``, class names taken from
    ``labels[index]``. ``None`` when the baseline is missing or malformed, when its edges are
    not :data:`CONFIDENCE_EDGES` (a histogram on other bins cannot be compared bin by bin), or
    when it has a different number of classes than ``labels`` (it belongs to another model
    contract). Duplicate labels also give ``None``: counts could not be told apart by name.
    """
    if not isinstance(drift_baseline, Mapping):
        return None
    names = list(labels)
    if not names or len(set(names)) != len(names):
        return None
    histogram = drift_baseline.get("confidence_histogram")
    mix = drift_baseline.get("predicted_class_mix")
    if not isinstance(histogram, Mapping) or not isinstance(mix, Mapping):
        return None
    edges = histogram.get("edges")
    if not isinstance(edges, Sequence) or isinstance(edges, str | bytes):
        return None
    if len(edges) != len(CONFIDENCE_EDGES):
        return None
    for edge, expected in zip(edges, CONFIDENCE_EDGES, strict=True):
        if isinstance(edge, bool) or not isinstance(edge, int | float):
            return None
        if not abs(float(edge) - expected) <= _EDGE_TOLERANCE:
            return None
    bins = _count_list(histogram.get("counts"), size=CONFIDENCE_BINS)
    classes = _count_list(mix.get("counts"), size=len(names))
    if bins is None or classes is None:
        return None
    return {name: float(count) for name, count in zip(names, classes, strict=True)}, bins
