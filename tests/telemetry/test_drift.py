"""Drift and health signals: each statistic against scipy on the same histograms, then verdicts.

Pure tests (no database). Reference values come from scipy's own implementations
(``scipy.spatial.distance.jensenshannon``, ``scipy.stats.wasserstein_distance``,
``scipy.stats.chisquare``) or from raw values expanded out of the histograms, never from the
module under test.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, wasserstein_distance

from onnxcheck.scoring import confidence_histogram, distribution
from telemetry.drift import (
    CONFIDENCE_BINS,
    CONFIDENCE_EDGES,
    DEFAULT_POLICY,
    OTHER_CLASS,
    MinuteHealth,
    SignalPolicyValues,
    Verdict,
    baseline_from_validation,
    chi_square,
    class_drift,
    confidence_drift,
    estimated_accuracy,
    jensen_shannon,
    latency_budget,
    next_alert_action,
    normalised_wasserstein,
    pool_sparse_bins,
    population_stability_index,
    throttling,
)

SEEDS = range(8)
CENTRES = (np.array(CONFIDENCE_EDGES[:-1]) + np.array(CONFIDENCE_EDGES[1:])) / 2


def _random_counts(rng: np.random.Generator, size: int = CONFIDENCE_BINS) -> np.ndarray:
    """Counts with some empty bins, as real histograms have."""
    counts = rng.integers(0, 300, size=size)
    counts[rng.random(size) < 0.25] = 0
    counts[rng.integers(size)] += 1  # never all zero
    return counts


def _confidences(rng: np.random.Generator, n: int, *, a: float = 8.0, b: float = 2.0) -> list:
    """A 20-bin confidence histogram of n Beta(a, b) draws (top-1 confidence-like)."""
    counts, _ = np.histogram(rng.beta(a, b, size=n), bins=CONFIDENCE_BINS, range=(0, 1))
    return [int(c) for c in counts]


# --- constants and policy ------------------------------------------------------------------


def test_confidence_edges_are_numpy_histogram_edges():
    _, edges = np.histogram([0.3], bins=20, range=(0, 1))
    assert len(CONFIDENCE_EDGES) == 21
    assert tuple(float(edge) for edge in edges) == CONFIDENCE_EDGES


def test_policy_from_object_reads_attributes_and_falls_back_to_defaults():
    row = SimpleNamespace(
        min_events=200, js_threshold=Decimal("0.2"), psi_alert=None, consecutive_breaches=3
    )
    policy = SignalPolicyValues.from_object(row)
    assert policy.min_events == 200
    assert policy.js_threshold == 0.2
    assert isinstance(policy.js_threshold, float)
    assert policy.psi_alert == 0.25  # None -> default
    assert policy.consecutive_breaches == 3
    assert policy.window_minutes == 60  # missing -> default
    assert SignalPolicyValues.from_object(None) == DEFAULT_POLICY


@pytest.mark.parametrize(
    "override",
    [{"psi_warn": 0.3, "psi_alert": 0.2}, {"min_events": 0}, {"chi2_p_value": 1.5}],
)
def test_policy_refuses_nonsense(override):
    with pytest.raises(ValueError):
        SignalPolicyValues(**override)


# --- Jensen-Shannon ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_jensen_shannon_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    ref, cur = _random_counts(rng), _random_counts(rng)
    assert jensen_shannon(ref, cur) == pytest.approx(jensenshannon(ref, cur), abs=1e-12)
    # shares give the same distance as counts
    assert jensen_shannon(ref / ref.sum(), cur) == pytest.approx(jensen_shannon(ref, cur), 1e-12)


def test_jensen_shannon_identical_and_disjoint():
    assert jensen_shannon([3, 0, 5], [30, 0, 50]) == 0.0
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)), abs=1e-12)


def test_jensen_shannon_refuses_mismatched_or_empty():
    with pytest.raises(ValueError):
        jensen_shannon([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        jensen_shannon([0, 0], [1, 2])
    with pytest.raises(ValueError):
        jensen_shannon([-1, 2], [1, 2])


# --- PSI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_psi_matches_evidently_formula(seed):
    rng = np.random.default_rng(seed)
    ref, cur = _random_counts(rng), _random_counts(rng)
    r = ref / ref.sum()
    c = cur / cur.sum()
    r[r == 0] = 1e-4
    c[c == 0] = 1e-4
    expected = float(np.sum((c - r) * np.log(c / r)))
    assert population_stability_index(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_psi_by_hand_with_a_new_class():
    # baseline never saw "b"; its zero share becomes epsilon = 1e-4
    expected = (0.98 - 1.0) * math.log(0.98) + (0.02 - 1e-4) * math.log(0.02 / 1e-4)
    assert population_stability_index([1000, 0], [980, 20]) == pytest.approx(expected, 1e-12)
    assert population_stability_index([5, 5], [50, 50]) == 0.0
    bigger = population_stability_index([1000, 0], [980, 20], epsilon=1e-6)
    assert bigger > expected


# --- Wasserstein ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_equals_scipy_on_bin_centres(seed):
    rng = np.random.default_rng(seed)
    ref, cur = _random_counts(rng), _random_counts(rng)
    raw = wasserstein_distance(CENTRES, CENTRES, ref, cur)
    # Evidently's normaliser: the std of the reference values (here the expanded histogram)
    std = np.std(np.repeat(CENTRES, ref))
    got = normalised_wasserstein(edges=CONFIDENCE_EDGES, reference_counts=ref, current_counts=cur)
    assert got == pytest.approx(raw / max(std, 0.001), rel=1e-9, abs=1e-12)


def test_wasserstein_uneven_edges_and_expanded_values():
    edges = [0.0, 1.0, 3.0, 7.0, 15.0]
    centres = np.array([0.5, 2.0, 5.0, 11.0])
    ref, cur = np.array([4, 0, 3, 1]), np.array([0, 2, 2, 5])
    expected = wasserstein_distance(np.repeat(centres, ref), np.repeat(centres, cur)) / np.std(
        np.repeat(centres, ref)
    )
    got = normalised_wasserstein(edges=edges, reference_counts=ref, current_counts=cur)
    assert got == pytest.approx(expected, rel=1e-12)


def test_wasserstein_identical_is_zero_and_one_bin_reference_uses_floor():
    ref = [0] * 19 + [100]
    assert (
        normalised_wasserstein(edges=CONFIDENCE_EDGES, reference_counts=ref, current_counts=ref)
        == 0.0
    )
    cur = [0] * 18 + [100, 0]  # one bin (0.05) lower; reference std is 0 -> floor 0.001
    got = normalised_wasserstein(edges=CONFIDENCE_EDGES, reference_counts=ref, current_counts=cur)
    assert got == pytest.approx(0.05 / 0.001, rel=1e-9)


def test_wasserstein_refuses_wrong_edges():
    with pytest.raises(ValueError):
        normalised_wasserstein(edges=[0, 1], reference_counts=[1, 2], current_counts=[1, 2])
    with pytest.raises(ValueError):
        normalised_wasserstein(edges=[0, 2, 1], reference_counts=[1, 2], current_counts=[1, 2])


# --- chi-square ----------------------------------------------------------------------------


def test_pool_sparse_bins_by_hand():
    exp, obs = pool_sparse_bins(expected=[1, 2, 3, 10, 0.5, 0.2], observed=[0, 4, 1, 9, 3, 0])
    assert exp.tolist() == pytest.approx([6.0, 10.7])
    assert obs.tolist() == [5.0, 12.0]
    exp, obs = pool_sparse_bins(expected=[1, 1], observed=[2, 0])
    assert exp.tolist() == [2.0]  # never reaches 5: one bin
    assert obs.tolist() == [2.0]


def _pooled_table(ref, cur):
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    smaller = (ref + cur) * min(ref.sum(), cur.sum()) / (ref.sum() + cur.sum())
    _, pooled_ref = pool_sparse_bins(expected=smaller, observed=ref)
    _, pooled_cur = pool_sparse_bins(expected=smaller, observed=cur)
    return np.vstack([pooled_ref, pooled_cur])


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_equals_scipy_on_the_pooled_table(seed):
    rng = np.random.default_rng(seed)
    ref, cur = _random_counts(rng), _random_counts(rng)
    table = _pooled_table(ref, cur)
    assert table.sum() == ref.sum() + cur.sum()
    result = chi2_contingency(table, correction=False)
    assert np.all(result.expected_freq >= 5)
    got = chi_square(reference_counts=ref, current_counts=cur)
    assert got.bins == table.shape[1]
    assert got.dof == result.dof == table.shape[1] - 1
    assert got.statistic == pytest.approx(result.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(result.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_dense_histograms_are_not_pooled():
    ref = np.array([100, 200, 300, 400])
    cur = np.array([30, 45, 70, 105])
    got = chi_square(reference_counts=ref, current_counts=cur)
    result = chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert got.bins == 4
    assert got.statistic == pytest.approx(result.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(result.pvalue, rel=1e-9)


def test_chi_square_identical_histograms():
    counts = [10, 20, 30, 40]
    got = chi_square(reference_counts=counts, current_counts=counts)
    assert got.statistic == 0.0
    assert got.p_value == pytest.approx(1.0)


def test_chi_square_zero_reference_bin_with_observations_is_tested_not_infinite():
    ref = [0, 500, 500]
    cur = [50, 250, 200]
    got = chi_square(reference_counts=ref, current_counts=cur)
    # A bin the reference never saw is evidence, not a division by zero: it stays a column.
    result = chi2_contingency(np.array([ref, cur]), correction=False)
    assert got.bins == 3
    assert got.statistic == pytest.approx(result.statistic)
    assert math.isfinite(got.statistic) and got.p_value < 1e-6


def test_chi_square_same_distribution_false_alarm_rate_is_nominal():
    # Baseline and window drawn from one distribution: about 5 % of pairs reject at 0.05.
    rng = np.random.default_rng(7)
    shares = rng.dirichlet(np.ones(20) * 2)
    rejections = sum(
        chi_square(
            reference_counts=rng.multinomial(5000, shares),
            current_counts=rng.multinomial(800, shares),
        ).p_value
        < 0.05
        for _ in range(400)
    )
    assert 8 <= rejections <= 34  # 400 x 5 % = 20 (binomial 99.9 % range)


# --- class drift ---------------------------------------------------------------------------

LABELS = ["cat", "dog", "bird"]


def test_class_drift_identical_mix_is_clear():
    verdict = class_drift(
        baseline_counts={"cat": 100, "dog": 200, "bird": 100},
        window_counts={"cat": 250, "dog": 500, "bird": 250},
        labels=LABELS,
    )
    assert verdict.evaluated
    assert not verdict.breached
    assert not verdict.warning
    assert verdict.statistics["jensen_shannon"] == 0.0
    assert verdict.statistics["psi"] == 0.0
    assert verdict.reason == "within threshold"
    assert verdict.events == 1000


def test_class_drift_disjoint_classes_breach_on_jensen_shannon():
    verdict = class_drift(
        baseline_counts={"cat": 1000, "dog": 0, "bird": 0},
        window_counts={"dog": 600},
        labels=LABELS,
    )
    assert verdict.breached
    assert verdict.statistic == "jensen_shannon"
    assert verdict.value == pytest.approx(math.sqrt(math.log(2)), abs=1e-12)
    assert verdict.threshold == 0.1
    assert "Jensen-Shannon" in verdict.reason


def test_class_drift_matches_scipy_in_label_order():
    rng = np.random.default_rng(7)
    ref = rng.integers(50, 500, size=3)
    cur = rng.integers(200, 400, size=3)
    verdict = class_drift(
        baseline_counts=dict(zip(LABELS, ref.tolist(), strict=True)),
        window_counts=dict(zip(LABELS, cur.tolist(), strict=True)),
        labels=LABELS,
    )
    assert verdict.statistics["jensen_shannon"] == pytest.approx(jensenshannon(ref, cur), abs=1e-12)
    assert verdict.statistics["events"] == int(cur.sum())


def test_class_outside_labels_goes_to_other():
    verdict = class_drift(
        baseline_counts={"cat": 500, "dog": 500, "bird": 0},
        window_counts={"cat": 250, "dog": 250, "zebra": 300, "lion": 200},
        labels=LABELS,
    )
    assert verdict.statistics["other_events"] == 500
    # four categories: cat, dog, bird, (other) with reference 0 in (other)
    assert verdict.statistics["jensen_shannon"] == pytest.approx(
        jensenshannon([500, 500, 0, 0], [250, 250, 0, 500]), abs=1e-12
    )
    assert verdict.breached
    assert OTHER_CLASS == "(other)"


def test_class_drift_psi_warning_without_breach():
    # a new class at 2 %: JS distance 0.083 (< 0.1), PSI 0.106 (warn 0.1, alert 0.25)
    verdict = class_drift(
        baseline_counts={"cat": 1000, "dog": 0, "bird": 0},
        window_counts={"cat": 980, "dog": 20},
        labels=LABELS,
    )
    assert verdict.statistics["jensen_shannon"] < 0.1
    assert verdict.evaluated
    assert not verdict.breached
    assert verdict.warning
    assert verdict.statistic == "psi"
    assert verdict.value == pytest.approx(
        (0.98 - 1.0) * math.log(0.98) + (0.02 - 1e-4) * math.log(0.02 / 1e-4), rel=1e-12
    )


def test_class_drift_psi_alert_breaches_when_js_does_not():
    policy = SignalPolicyValues(js_threshold=0.5)
    verdict = class_drift(
        baseline_counts={"cat": 1000},
        window_counts={"cat": 950, "dog": 50},
        labels=LABELS,
        policy=policy,
    )
    assert verdict.breached
    assert not verdict.warning
    assert verdict.statistic == "psi"
    assert verdict.value >= 0.25
    assert verdict.threshold == 0.25


def test_class_drift_not_evaluated_under_min_events_or_without_baseline():
    few = class_drift(
        baseline_counts={"cat": 10}, window_counts={"dog": 499}, labels=LABELS
    )  # totally different mix, but too few events to judge
    assert not few.evaluated
    assert not few.breached
    assert few.value is None
    assert few.events == 499
    assert "499" in few.reason
    assert "500" in few.reason
    empty_baseline = class_drift(baseline_counts={}, window_counts={"dog": 900}, labels=LABELS)
    assert not empty_baseline.evaluated
    assert "baseline" in empty_baseline.reason
    exactly = class_drift(baseline_counts={"cat": 10}, window_counts={"cat": 500}, labels=LABELS)
    assert exactly.evaluated


def test_verdict_statistics_are_json_serialisable():
    verdict = class_drift(
        baseline_counts={"cat": 100, "dog": 300}, window_counts={"cat": 700}, labels=LABELS
    )
    decoded = json.loads(json.dumps(verdict.statistics))
    assert decoded["events"] == 700
    assert decoded["psi"] == pytest.approx(verdict.statistics["psi"])


# --- confidence drift ----------------------------------------------------------------------


def _baseline(seed: int = 0) -> list[int]:
    # Large, so the reference's own sampling noise is small: the goodness-of-fit test treats
    # the baseline shares as exact (a 5,000-event baseline false-alarms ~18 % of 1,000-event
    # windows at p < 0.05).
    return _confidences(np.random.default_rng(seed), 200_000)


def test_confidence_drift_under_min_events_not_evaluated():
    verdict = confidence_drift(baseline_bins=_baseline(), window_bins=[0] * 19 + [499])
    assert not verdict.evaluated
    assert not verdict.breached
    assert verdict.events == 499


def test_confidence_drift_empty_window_or_baseline_not_evaluated():
    assert not confidence_drift(baseline_bins=_baseline(), window_bins=[0] * 20).evaluated
    no_baseline = confidence_drift(baseline_bins=[0] * 20, window_bins=_baseline(1))
    assert not no_baseline.evaluated
    assert "baseline" in no_baseline.reason


def _scaled(counts: list[int], total: int) -> list[int]:
    """The same shape with ``total`` events (largest remainder rounding): no sampling noise."""
    exact = np.asarray(counts, dtype=float) / sum(counts) * total
    scaled = np.floor(exact).astype(int)
    for index in np.argsort(scaled - exact)[: total - scaled.sum()]:
        scaled[index] += 1
    assert scaled.sum() == total
    return scaled.tolist()


@pytest.mark.parametrize("events", [500, 750, 1000])
def test_confidence_drift_small_window_uses_chi_square(events):
    baseline = _baseline()
    rng = np.random.default_rng(events)
    same = confidence_drift(baseline_bins=baseline, window_bins=_scaled(baseline, events))
    assert same.evaluated
    assert same.statistic == "chi2_p"
    assert not same.breached
    shifted_bins = _confidences(rng, events, a=3.0, b=2.0)
    shifted = confidence_drift(baseline_bins=baseline, window_bins=shifted_bins)
    assert shifted.breached
    assert shifted.statistic == "chi2_p"
    assert shifted.threshold == 0.05
    test = chi_square(reference_counts=baseline, current_counts=shifted_bins)
    assert shifted.value == test.p_value
    assert shifted.statistics["chi2_statistic"] == test.statistic
    assert (
        shifted.statistics["mean_confidence_window"]
        < shifted.statistics["mean_confidence_baseline"]
    )


def test_confidence_drift_large_window_uses_wasserstein():
    baseline = _baseline()
    rng = np.random.default_rng(11)
    same = confidence_drift(baseline_bins=baseline, window_bins=_confidences(rng, 1001))
    assert same.evaluated
    assert same.statistic == "wasserstein_norm"
    assert not same.breached
    shifted_bins = _confidences(rng, 20_000, a=6.0, b=2.0)
    shifted = confidence_drift(baseline_bins=baseline, window_bins=shifted_bins)
    assert shifted.statistic == "wasserstein_norm"
    assert shifted.breached
    raw = wasserstein_distance(CENTRES, CENTRES, baseline, shifted_bins)
    std = np.std(np.repeat(CENTRES, baseline))
    assert shifted.value == pytest.approx(raw / std, rel=1e-9)
    assert shifted.statistics["wasserstein_norm"] == shifted.value


def test_confidence_drift_mean_confidence_from_bin_centres():
    window = [0] * 20
    window[10], window[19] = 300, 300  # centres 0.525 and 0.975
    verdict = confidence_drift(baseline_bins=window, window_bins=window)
    assert verdict.statistics["mean_confidence_window"] == pytest.approx(0.75)
    assert verdict.statistics["mean_confidence_baseline"] == pytest.approx(0.75)
    assert verdict.value == pytest.approx(1.0)  # identical: p = 1
    assert not verdict.breached


def test_confidence_drift_everything_in_one_bin_on_both_sides_is_not_evaluated():
    verdict = confidence_drift(baseline_bins=[0] * 19 + [5000], window_bins=[0] * 19 + [600])
    assert not verdict.evaluated
    assert verdict.statistics["chi2_dof"] == 0
    assert "one confidence range" in verdict.reason


def test_confidence_drift_a_window_where_the_baseline_never_was_breaches():
    verdict = confidence_drift(baseline_bins=[0] * 19 + [5000], window_bins=[600] + [0] * 19)
    assert verdict.evaluated and verdict.breached and verdict.statistic == "chi2_p"


def test_confidence_drift_refuses_wrong_bin_count():
    with pytest.raises(ValueError):
        confidence_drift(baseline_bins=[1] * 10, window_bins=[1] * 20)


# --- latency -------------------------------------------------------------------------------


def test_latency_budget():
    over = latency_budget(p95_ms=120.0, p50_ms=40.0, events=100, budget_ms=100.0)
    assert over.breached
    assert over.value == 120.0
    assert over.threshold == 100.0
    assert over.statistic == "p95_ms"
    at = latency_budget(p95_ms=100.0, p50_ms=40.0, events=100, budget_ms=100.0)
    assert at.evaluated
    assert not at.breached
    assert not latency_budget(p95_ms=500.0, p50_ms=1.0, events=19, budget_ms=100.0).evaluated
    assert not latency_budget(p95_ms=500.0, p50_ms=1.0, events=100, budget_ms=None).evaluated


# --- throttling ----------------------------------------------------------------------------


def _minute(samples=0, throttled=0, temps=()):
    return MinuteHealth(
        samples=samples,
        throttled_samples=throttled,
        temperature_count=len(temps),
        temperature_sum=float(sum(temps)),
        temperature_max=max(temps) if temps else None,
    )


def test_throttling_share_is_pooled_over_samples():
    minutes = [_minute(10, 6), _minute(), _minute(30, 10)] + [_minute()] * 7
    verdict = throttling(minutes=minutes)
    assert verdict.statistics["throttled_share"] == pytest.approx(16 / 40)
    assert not verdict.breached  # 0.4 < 0.5
    assert verdict.events == 40
    hot = throttling(minutes=[_minute(10, 6), _minute(10, 5)])
    assert hot.breached
    assert hot.statistic == "throttled_share"
    assert hot.value == pytest.approx(0.55)


def test_throttling_temperature_rise_first_to_last_reporting_minute():
    minutes = [
        _minute(5),  # no temperature: skipped
        _minute(5, temps=(50.0, 52.0)),  # first mean 51
        _minute(5, temps=(70.0,)),
        _minute(5, temps=(60.0, 62.0)),  # last mean 61
        _minute(),
    ]
    verdict = throttling(minutes=minutes)
    assert verdict.statistics["temperature_rise_c"] == pytest.approx(10.0)
    assert verdict.statistics["temperature_max_c"] == 70.0
    assert verdict.breached
    assert verdict.statistic == "temperature_rise_c"
    cooler = throttling(minutes=minutes, policy=SignalPolicyValues(temperature_rise_c=10.5))
    assert not cooler.breached


def test_throttling_without_samples_not_evaluated():
    verdict = throttling(minutes=[_minute()] * 10)
    assert not verdict.evaluated
    assert verdict.events == 0


# --- alert streaks -------------------------------------------------------------------------

BREACH = Verdict(True, True, False, 0.3, 0.1, "jensen_shannon", {}, "drifted", 600)
CLEAR = Verdict(True, False, False, 0.01, 0.1, "jensen_shannon", {}, "within threshold", 600)
SKIP = Verdict(False, False, False, None, None, "jensen_shannon", {}, "too few", 10)


def _run(verdicts, *, alert_live=False):
    streak, actions = 0, []
    for verdict in verdicts:
        streak, action = next_alert_action(streak=streak, verdict=verdict, alert_live=alert_live)
        actions.append(action)
        if action == "open":
            alert_live = True
        elif action == "resolve":
            alert_live = False
    return streak, actions


def test_two_breaches_open_an_alert():
    assert _run([BREACH, BREACH]) == (2, [None, "open"])


def test_breach_clear_breach_does_not_open():
    assert _run([BREACH, CLEAR, BREACH]) == (1, [None, None, None])


def test_not_evaluated_keeps_the_streak():
    assert _run([BREACH, SKIP, BREACH]) == (2, [None, None, "open"])
    assert next_alert_action(streak=1, verdict=SKIP, alert_live=True) == (1, None)


def test_live_alert_updates_then_resolves_on_clear():
    assert _run([BREACH, BREACH, BREACH, CLEAR]) == (0, [None, "open", "update", "resolve"])
    assert next_alert_action(streak=5, verdict=CLEAR, alert_live=True) == (0, "resolve")
    assert next_alert_action(streak=5, verdict=CLEAR, alert_live=False) == (0, None)


def test_consecutive_breaches_comes_from_policy():
    policy = SignalPolicyValues(consecutive_breaches=3)
    assert next_alert_action(streak=1, verdict=BREACH, alert_live=False, policy=policy) == (
        2,
        None,
    )
    assert next_alert_action(streak=2, verdict=BREACH, alert_live=False, policy=policy) == (
        3,
        "open",
    )


# --- estimated accuracy --------------------------------------------------------------------


def test_estimated_accuracy():
    assert estimated_accuracy(confidence_sum=45.0, count=50) == pytest.approx(0.9)
    assert estimated_accuracy(confidence_sum=0.0, count=0) is None


# --- baseline from validation --------------------------------------------------------------


def _stored_baseline(rng: np.random.Generator, classes: int = 3) -> dict:
    """The exact shape onnxcheck's calibration step stores, built by its own functions."""
    confidences = rng.beta(8, 2, size=400)
    predictions = rng.integers(0, classes, size=400)
    return json.loads(
        json.dumps(
            {
                "confidence_histogram": confidence_histogram(confidences),
                "predicted_class_mix": distribution(predictions, num_classes=classes),
            }
        )
    )


def test_baseline_from_validation_reads_the_stored_shape():
    stored = _stored_baseline(np.random.default_rng(3))
    result = baseline_from_validation(stored, LABELS)
    assert result is not None
    classes, bins = result
    counts = stored["predicted_class_mix"]["counts"]
    assert classes == {"cat": counts[0], "dog": counts[1], "bird": counts[2]}
    assert bins == stored["confidence_histogram"]["counts"]
    assert sum(bins) == 400


def test_baseline_from_validation_tolerates_tiny_edge_noise():
    stored = _stored_baseline(np.random.default_rng(4))
    stored["confidence_histogram"]["edges"][5] += 1e-12
    assert baseline_from_validation(stored, LABELS) is not None


def _mutations():
    def wrong_edges(b):
        b["confidence_histogram"]["edges"][5] += 1e-6

    def ten_bins(b):
        b["confidence_histogram"]["edges"] = np.linspace(0, 1, 11).tolist()
        b["confidence_histogram"]["counts"] = [1] * 10

    def negative(b):
        b["confidence_histogram"]["counts"][0] = -1

    def text_count(b):
        b["predicted_class_mix"]["counts"][0] = "7"

    def fractional(b):
        b["confidence_histogram"]["counts"][0] = 1.5

    def no_mix(b):
        del b["predicted_class_mix"]

    def no_histogram(b):
        del b["confidence_histogram"]

    def extra_class(b):
        b["predicted_class_mix"]["counts"].append(3)

    def edges_string(b):
        b["confidence_histogram"]["edges"] = "0,1"

    return [
        wrong_edges,
        ten_bins,
        negative,
        text_count,
        fractional,
        no_mix,
        no_histogram,
        extra_class,
        edges_string,
    ]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_baseline_from_validation_refuses_malformed(mutate):
    stored = _stored_baseline(np.random.default_rng(5))
    assert baseline_from_validation(stored, LABELS) is not None  # the unmutated one is fine
    mutate(stored)
    assert baseline_from_validation(stored, LABELS) is None


def test_baseline_from_validation_refuses_missing_and_mismatched_labels():
    stored = _stored_baseline(np.random.default_rng(6))
    assert baseline_from_validation(None, LABELS) is None
    assert baseline_from_validation({}, LABELS) is None
    assert baseline_from_validation(stored, ["cat", "dog"]) is None
    assert baseline_from_validation(stored, ["cat", "cat", "dog"]) is None


def test_baseline_feeds_the_signals():
    rng = np.random.default_rng(8)
    classes, bins = baseline_from_validation(_stored_baseline(rng), LABELS)
    window = {name: int(count) * 2 for name, count in classes.items()}
    assert class_drift(baseline_counts=classes, window_counts=window, labels=LABELS).value == 0.0
    doubled = [2 * count for count in bins]
    verdict = confidence_drift(baseline_bins=bins, window_bins=doubled)
    assert verdict.evaluated
    assert verdict.statistic == "chi2_p"
    assert verdict.value == pytest.approx(1.0)
