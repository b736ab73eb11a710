"""Canary analysis statistics: verdicts on simulated waves, and each statistic against scipy.

Pure tests (no database). Groups are built from numpy samples with fixed seeds, rolled up the
way telemetry rolls them up (a latency sketch, a 20-bin confidence histogram, class counts,
health sample counts), so each scenario states its true effect and the verdict is checked
against it. Reference statistics come from scipy or numpy on the raw samples, never from the
module under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, mannwhitneyu

from rollouts.analysis import (
    CHECKS,
    CheckVerdict,
    GroupStats,
    Outcome,
    Thresholds,
    analyse,
    mann_whitney,
    overall,
    quantile_interval,
)
from telemetry.sketch import LatencySketch

CLASSES = ("person", "vehicle", "bicycle")
MIX = (0.6, 0.3, 0.1)
MEDIAN_MS = 40.0
SIGMA = 0.3
LIMITS = Thresholds()


def _sketch(values: np.ndarray, *, alpha: float = 0.01) -> LatencySketch:
    sketch = LatencySketch(alpha=alpha)
    sketch.add_many(values)
    return sketch


def _latencies(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(MEDIAN_MS), SIGMA, n) * scale


def _group(
    seed: int,
    n: int = 2000,
    *,
    latency_scale: float = 1.0,
    confidence_shift: float = 0.0,
    mix: tuple[float, ...] = MIX,
    health_samples: int = 600,
    throttled_share: float = 0.0,
) -> GroupStats:
    """A group of ``n`` inference events; Beta(5, 2) confidences (mean 0.714, 10.9 % < 0.5)."""
    rng = np.random.default_rng(seed)
    confidences = np.clip(rng.beta(5, 2, n) - confidence_shift, 0.0, 1.0)
    bins, _ = np.histogram(confidences, bins=20, range=(0.0, 1.0))
    classes = rng.multinomial(n, mix)
    return GroupStats(
        count=n,
        latency=_sketch(_latencies(seed + 1000, n, latency_scale)),
        confidence_sum=float(confidences.sum()),
        confidence_bins=tuple(int(b) for b in bins),
        class_counts={name: int(c) for name, c in zip(CLASSES, classes, strict=True)},
        health_samples=health_samples,
        throttled_samples=round(health_samples * throttled_share),
        devices=10,
    )


def _outcomes(verdicts: list[CheckVerdict]) -> dict[str, Outcome]:
    return {verdict.check: verdict.outcome for verdict in verdicts}


def _by_check(verdicts: list[CheckVerdict]) -> dict[str, CheckVerdict]:
    return {verdict.check: verdict for verdict in verdicts}


def _run(candidate: GroupStats, baseline: GroupStats, **kwargs: object) -> list[CheckVerdict]:
    options: dict[str, object] = {"failed_loads": 0, "devices": 10, "thresholds": LIMITS}
    options.update(kwargs)
    verdicts = analyse(candidate=candidate, baseline=baseline, **options)  # type: ignore[arg-type]
    # Every verdict must be storable as strict JSON (no NaN/inf) in every scenario.
    for verdict in verdicts:
        json.dumps(verdict.to_dict(), allow_nan=False)
    return verdicts


# --- whole waves --------------------------------------------------------------------------


def test_same_distribution_passes_every_check_in_fixed_order():
    verdicts = _run(_group(1), _group(2))

    assert [verdict.check for verdict in verdicts] == list(CHECKS)
    assert all(verdict.outcome is Outcome.PASS for verdict in verdicts), [
        verdict.summary for verdict in verdicts
    ]
    assert overall(verdicts) is Outcome.PASS
    latency = _by_check(verdicts)["latency_p95"].figures
    assert latency["ratio_low"] <= 1.0 <= latency["ratio_high"]
    assert latency["ratio_high"] <= 1.2
    assert 0.45 < latency["mw_probability_of_superiority"] < 0.55


def test_candidate_half_again_slower_fails_latency_only():
    verdicts = _run(_group(1, latency_scale=1.5), _group(2))

    outcomes = _outcomes(verdicts)
    assert outcomes["latency_p95"] is Outcome.FAIL
    assert all(outcomes[check] is Outcome.PASS for check in CHECKS if check != "latency_p95")
    assert overall(verdicts) is Outcome.FAIL
    latency = _by_check(verdicts)["latency_p95"]
    # True ratio 1.5; the interval must hold it and lie wholly above the 1.2 budget.
    assert 1.2 < latency.figures["ratio_low"] <= 1.5 <= latency.figures["ratio_high"]
    assert latency.figures["mw_p_slower"] < 1e-6
    assert latency.figures["mw_probability_of_superiority"] > 0.8
    assert "budget +20 %" in latency.summary
    assert "over budget" in latency.summary


def test_candidate_ten_percent_slower_is_within_budget_though_significant():
    verdict = _by_check(_run(_group(1, latency_scale=1.1), _group(2)))["latency_p95"]

    assert verdict.outcome is Outcome.PASS
    assert verdict.figures["ratio_low"] > 1.0
    assert verdict.figures["ratio_high"] <= 1.2
    assert 5 < verdict.figures["change_pct"] < 15
    # Slower is detectable, but inside the budget: significance alone does not fail a wave.
    assert verdict.figures["mw_p_slower"] < 0.001


def test_latency_summary_states_p95_interval_and_budget():
    verdict = _by_check(_run(_group(1, latency_scale=1.5), _group(2)))["latency_p95"]
    f = verdict.figures

    expected = (
        f"P95 {f['candidate_p95_ms']:.1f} ms vs {f['baseline_p95_ms']:.1f} ms baseline "
        f"({f['change_pct']:+.1f} %, 95 % CI {f['change_low_pct']:+.1f} % to "
        f"{f['change_high_pct']:+.1f} %); budget +20 %"
    )
    assert verdict.summary.startswith(expected)
    assert f["change_pct"] == pytest.approx((f["ratio"] - 1) * 100, rel=1e-4)
    assert f["ratio_low"] == pytest.approx(
        f["candidate_p95_low_ms"] / f["baseline_p95_high_ms"], rel=1e-4
    )


def test_small_samples_are_inconclusive_and_say_what_is_missing():
    verdicts = _run(_group(1, n=120, health_samples=12), _group(2, n=5000))

    outcomes = _outcomes(verdicts)
    for check in ("latency_p95", "confidence_mean", "class_mix", "low_confidence", "throttling"):
        assert outcomes[check] is Outcome.INCONCLUSIVE, check
    by_check = _by_check(verdicts)
    assert by_check["latency_p95"].summary == (
        "Not enough latency readings to judge: candidate 120, baseline 5,000 "
        "(need 200 each; candidate short)."
    )
    assert "candidate 12, baseline 600 (need 30 each" in by_check["throttling"].summary
    assert by_check["latency_p95"].figures["ratio"] is None
    assert outcomes["failed_loads"] is Outcome.PASS
    assert overall(verdicts) is Outcome.INCONCLUSIVE


def test_confidence_dropping_by_a_tenth_fails_mean_and_low_share():
    verdicts = _run(_group(1, confidence_shift=0.1), _group(2))

    outcomes = _outcomes(verdicts)
    assert outcomes["confidence_mean"] is Outcome.FAIL
    assert outcomes["low_confidence"] is Outcome.FAIL
    assert outcomes["latency_p95"] is Outcome.PASS
    assert outcomes["class_mix"] is Outcome.PASS
    by_check = _by_check(verdicts)
    mean = by_check["confidence_mean"].figures
    assert 0.05 < mean["drop_low"] < mean["drop"] < mean["drop_high"]
    assert mean["drop"] == pytest.approx(0.1, abs=0.015)
    low = by_check["low_confidence"].figures
    # Beta(5, 2): P(X < 0.5) = 0.109, P(X < 0.6) = 0.233, so the share rises ~12.4 points.
    assert low["increase"] == pytest.approx(0.124, abs=0.03)
    assert low["increase_low"] > 0.05
    assert low["counted_below"] == 0.5


def test_confidence_drop_near_the_limit_is_inconclusive():
    verdict = _by_check(_run(_group(1, confidence_shift=0.05), _group(2)))["confidence_mean"]

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.figures["drop_low"] < 0.05 < verdict.figures["drop_high"]
    assert "straddles" in verdict.summary


def test_confidence_spread_from_bins_matches_the_raw_standard_deviation():
    rng = np.random.default_rng(7)
    raw = rng.beta(5, 2, 4000)
    verdict = _by_check(_run(_group(7, n=4000), _group(8)))["confidence_mean"]

    assert verdict.figures["candidate_mean"] == pytest.approx(raw.mean(), abs=1e-5)
    # Binning at width 0.05 adds about width^2/12 to the variance: a sd within 0.005.
    assert verdict.figures["candidate_sd"] == pytest.approx(raw.std(ddof=1), abs=0.005)


def test_swapped_class_mix_fails_with_scipy_statistics():
    candidate = _group(1, mix=(0.3, 0.6, 0.1))
    baseline = _group(2)
    verdict = _by_check(_run(candidate, baseline))["class_mix"]

    assert verdict.outcome is Outcome.FAIL
    names = sorted(CLASSES)
    cand = [candidate.class_counts[name] for name in names]
    base = [baseline.class_counts[name] for name in names]
    assert verdict.figures["jensen_shannon"] == pytest.approx(jensenshannon(base, cand), rel=1e-5)
    assert verdict.figures["jensen_shannon"] > 0.1
    chi2, p, dof, _ = chi2_contingency(np.array([base, cand]), correction=False)
    assert verdict.figures["chi2_statistic"] == pytest.approx(chi2, rel=1e-5)
    assert verdict.figures["chi2_dof"] == dof == 2
    assert verdict.figures["chi2_p"] == pytest.approx(p, rel=1e-4)
    assert verdict.figures["chi2_p"] < 0.05


def test_class_mix_over_the_limit_but_not_significant_is_inconclusive():
    # JS distance 0.142 > 0.1, but chi-square on 40 events each gives p = 0.074.
    base = GroupStats(
        count=40,
        latency=None,
        confidence_sum=30.0,
        confidence_bins=(0,) * 19 + (40,),
        class_counts={"a": 24, "b": 16},
    )
    cand = GroupStats(
        count=40,
        latency=None,
        confidence_sum=30.0,
        confidence_bins=(0,) * 19 + (40,),
        class_counts={"a": 16, "b": 24},
    )
    limits = Thresholds(min_events=40)
    verdict = _by_check(_run(cand, base, thresholds=limits))["class_mix"]

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.figures["jensen_shannon"] == pytest.approx(0.1418, abs=1e-4)
    assert verdict.figures["chi2_p"] == pytest.approx(0.0736, abs=1e-4)


def test_class_only_the_candidate_predicts_counts_in_the_union():
    base = _group(2)
    counts = dict(_group(1).class_counts)
    counts["ghost"] = 600
    cand = GroupStats(
        count=base.count,
        latency=base.latency,
        confidence_sum=base.confidence_sum,
        confidence_bins=base.confidence_bins,
        class_counts=counts,
    )
    verdict = _by_check(_run(cand, base))["class_mix"]

    assert verdict.figures["classes"] == 4
    assert verdict.outcome is Outcome.FAIL


def test_low_confidence_threshold_is_rounded_down_to_a_bin_edge():
    limits = Thresholds(low_confidence=0.52)
    candidate, baseline = _group(1), _group(2)
    verdict = _by_check(_run(candidate, baseline, thresholds=limits))["low_confidence"]

    assert verdict.figures["low_confidence"] == 0.52
    assert verdict.figures["counted_below"] == 0.5
    assert verdict.figures["candidate_low"] == sum(candidate.confidence_bins[:10])
    assert "rounded down to 0.5" in verdict.summary


def test_low_confidence_threshold_below_the_first_edge_is_inconclusive():
    limits = Thresholds(low_confidence=0.03)
    verdict = _by_check(_run(_group(1), _group(2), thresholds=limits))["low_confidence"]

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.figures["counted_below"] == 0.0


def test_throttling_rising_from_none_to_thirty_percent_fails():
    verdict = _by_check(_run(_group(1, throttled_share=0.3), _group(2)))["throttling"]

    assert verdict.outcome is Outcome.FAIL
    assert verdict.figures["candidate_throttled"] == 180
    assert verdict.figures["increase"] == pytest.approx(0.3)
    assert 0.05 < verdict.figures["increase_low"] < 0.3 < verdict.figures["increase_high"]


def test_throttling_none_on_either_side_needs_enough_samples_to_pass():
    few = _by_check(_run(_group(1, health_samples=30), _group(2, health_samples=30)))
    many = _by_check(_run(_group(1, health_samples=600), _group(2, health_samples=600)))

    # Agresti-Caffo: 0/30 vs 0/30 cannot rule out +5 points (a Wald interval would be [0, 0]
    # and pass); 0/600 vs 0/600 can.
    assert few["throttling"].outcome is Outcome.INCONCLUSIVE
    assert few["throttling"].figures["increase_high"] == pytest.approx(0.0853, abs=1e-4)
    assert many["throttling"].outcome is Outcome.PASS
    assert (
        many["throttling"].figures["increase_low"]
        < 0
        < many["throttling"].figures["increase_high"]
        <= 0.05
    )


@pytest.mark.parametrize(
    ("failed", "devices", "expected"),
    [(1, 10, Outcome.FAIL), (0, 10, Outcome.PASS), (1, 20, Outcome.PASS), (0, 0, None)],
)
def test_failed_loads_is_a_plain_share_against_the_limit(failed, devices, expected):
    verdict = _by_check(_run(_group(1), _group(2), failed_loads=failed, devices=devices))[
        "failed_loads"
    ]

    assert verdict.outcome is (expected or Outcome.INCONCLUSIVE)
    assert verdict.figures["statistical"] is False
    assert verdict.figures["share"] == (failed / devices if devices else None)


def test_impossible_failed_load_counts_are_refused():
    with pytest.raises(ValueError, match="exceeds notified devices"):
        _run(_group(1), _group(2), failed_loads=3, devices=2)
    with pytest.raises(ValueError, match="failed_loads"):
        _run(_group(1), _group(2), failed_loads=-1, devices=2)


def test_no_baseline_is_inconclusive_everywhere_but_failed_loads():
    verdicts = _run(_group(1), GroupStats.empty(), failed_loads=0, devices=10)

    for verdict in verdicts[:-1]:
        assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.check
        assert "no baseline" in verdict.summary, verdict.check
    assert verdicts[-1].outcome is Outcome.PASS
    assert overall(verdicts) is Outcome.INCONCLUSIVE


def test_empty_candidate_and_missing_latency_never_raise():
    verdicts = _run(GroupStats.empty(), _group(2), devices=0)
    assert all(verdict.outcome is Outcome.INCONCLUSIVE for verdict in verdicts)

    base = _group(2)
    no_latency = GroupStats(
        count=base.count,
        latency=None,
        confidence_sum=base.confidence_sum,
        confidence_bins=base.confidence_bins,
        class_counts=base.class_counts,
        health_samples=base.health_samples,
    )
    verdict = _by_check(_run(no_latency, base))["latency_p95"]
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "candidate 0, baseline 2,000" in verdict.summary


def test_a_p95_over_budget_from_a_slow_tail_alone_is_inconclusive():
    # 6 % of calls hang at 500 ms while the rest got 10 % faster: the P95 interval is far
    # over budget, but the candidate is not slower overall, so the wave is not failed on it.
    rng = np.random.default_rng(5)
    fast = _latencies(11, 1880, 0.9)
    tail = rng.uniform(480, 520, 120)
    candidate = GroupStats(
        count=2000,
        latency=_sketch(np.concatenate([fast, tail])),
        confidence_sum=1400.0,
        confidence_bins=(0,) * 14 + (2000,) + (0,) * 5,
        class_counts={"a": 2000},
    )
    baseline = GroupStats(
        count=2000,
        latency=_sketch(_latencies(12, 2000)),
        confidence_sum=1400.0,
        confidence_bins=(0,) * 14 + (2000,) + (0,) * 5,
        class_counts={"a": 2000},
    )
    verdict = _by_check(_run(candidate, baseline))["latency_p95"]

    assert verdict.figures["ratio_low"] > 1.2
    assert verdict.figures["mw_p_slower"] > 0.5
    assert verdict.outcome is Outcome.INCONCLUSIVE


def test_zero_latency_baseline_and_different_mappings_are_inconclusive():
    base = _group(2)
    zeros = GroupStats(
        count=base.count,
        latency=_sketch(np.zeros(2000)),
        confidence_sum=base.confidence_sum,
        confidence_bins=base.confidence_bins,
        class_counts=base.class_counts,
    )
    verdict = _by_check(_run(_group(1), zeros))["latency_p95"]
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.figures["baseline_p95_ms"] == 0.0

    coarse = GroupStats(
        count=base.count,
        latency=_sketch(_latencies(3, 2000), alpha=0.02),
        confidence_sum=base.confidence_sum,
        confidence_bins=base.confidence_bins,
        class_counts=base.class_counts,
    )
    verdict = _by_check(_run(_group(1), coarse))["latency_p95"]
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "different bucket mappings" in verdict.summary


# --- the latency statistics ---------------------------------------------------------------


def test_p95_interval_uses_binomial_order_statistic_ranks():
    values = _latencies(3, 2000)
    interval = quantile_interval(_sketch(values), q=0.95, alpha=0.05)
    assert interval is not None

    # 1900 +- 1.96 * sqrt(2000 * 0.95 * 0.05) = 1880.9 .. 1919.1 -> 1-based 1880, 1920.
    assert (interval.low_rank, interval.high_rank) == (1879, 1919)
    ordered = np.sort(values)
    assert interval.low == pytest.approx(ordered[1879], rel=0.01)
    assert interval.high == pytest.approx(ordered[1919], rel=0.01)
    assert interval.value == _sketch(values).quantile(0.95)
    true_p95 = MEDIAN_MS * math.exp(1.6448536 * SIGMA)
    assert interval.low < true_p95 < interval.high


def test_p95_interval_of_an_empty_sketch_is_none():
    assert quantile_interval(LatencySketch(), q=0.95, alpha=0.05) is None


def test_mann_whitney_on_buckets_equals_scipy_on_bucket_values():
    cand_sketch = _sketch(np.concatenate([_latencies(1, 3000, 1.03), np.zeros(40)]))
    base_sketch = _sketch(_latencies(2, 2500))
    result = mann_whitney(cand_sketch, base_sketch)
    assert result is not None

    def expand(sketch: LatencySketch) -> np.ndarray:
        # Each bucket's values as its representative, the zero bucket as 0: ties as binned.
        data = sketch.to_dict()
        gamma = (1 + data["alpha"]) / (1 - data["alpha"])
        values = [np.zeros(data["zero"])]
        for i, count in enumerate(data["counts"]):
            values.append(np.full(count, 2 * gamma ** (data["offset"] + i) / (gamma + 1)))
        return np.concatenate(values)

    reference = mannwhitneyu(
        expand(cand_sketch), expand(base_sketch), alternative="greater", method="asymptotic"
    )
    assert result.u == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_slower == pytest.approx(reference.pvalue, rel=1e-9)


@pytest.mark.parametrize("scale", [1.0, 1.01])
def test_mann_whitney_on_buckets_agrees_with_scipy_on_raw_samples(scale):
    cand_raw, base_raw = _latencies(1, 3000, scale), _latencies(2, 2500)
    result = mann_whitney(_sketch(cand_raw), _sketch(base_raw))
    assert result is not None

    reference = mannwhitneyu(cand_raw, base_raw, alternative="greater", method="asymptotic")
    assert 0.001 < reference.pvalue < 0.2  # a moderate p, so the comparison is meaningful
    # Binning only turns comparisons within one 2 %-wide bucket into ties.
    assert result.probability_of_superiority == pytest.approx(
        reference.statistic / (3000 * 2500), abs=0.001
    )
    assert result.p_slower == pytest.approx(reference.pvalue, rel=0.1)


def test_mann_whitney_all_ties_gives_no_evidence():
    result = mann_whitney(_sketch(np.full(300, 10.0)), _sketch(np.full(300, 10.0)))
    assert result is not None
    assert result.z is None
    assert result.p_slower == 1.0
    assert result.probability_of_superiority == 0.5


# --- thresholds and storage ---------------------------------------------------------------


def test_thresholds_round_trip_through_json_and_missing_keys_default():
    limits = Thresholds(latency_budget_pct=10, min_events=500, alpha=0.01)
    stored = json.loads(json.dumps(limits.to_dict()))

    assert Thresholds.from_dict(stored) == limits
    assert stored["latency_budget_pct"] == 10.0
    assert Thresholds.from_dict({"alpha": 0.1}) == Thresholds(alpha=0.1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"latency_budget": 20, "min_evnts": 3},
            "unknown threshold keys: latency_budget, min_evnts",
        ),
        ({"alpha": 0.0}, "alpha must lie in"),
        ({"alpha": 0.7}, "alpha must lie in"),
        ({"latency_budget_pct": -5}, "latency_budget_pct must lie in"),
        ({"max_class_shift": 0.9}, "max_class_shift must lie in"),
        ({"low_confidence": 0}, "low_confidence must lie in"),
        ({"max_failed_load_share": 1.5}, "max_failed_load_share must lie in"),
        ({"max_confidence_drop": float("nan")}, "must be a finite number"),
        ({"min_events": 0}, "min_events must be a positive integer"),
        ({"min_health_samples": 2.5}, "min_health_samples must be a positive integer"),
        ({"min_events": True}, "min_events must be a positive integer"),
        ({"alpha": "0.05"}, "alpha must be a finite number"),
    ],
)
def test_thresholds_from_dict_refuses_bad_values(data, message):
    with pytest.raises(ValueError, match=message):
        Thresholds.from_dict(data)


def test_check_verdict_round_trips_and_refuses_bad_forms():
    verdict = _by_check(_run(_group(1, latency_scale=1.5), _group(2)))["latency_p95"]
    stored = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))

    assert stored["outcome"] == "fail"
    assert CheckVerdict.from_dict(stored) == verdict
    with pytest.raises(ValueError, match="unknown outcome"):
        CheckVerdict.from_dict({**stored, "outcome": "maybe"})
    with pytest.raises(ValueError, match="unknown check"):
        CheckVerdict.from_dict({**stored, "check": "accuracy"})
    with pytest.raises(ValueError, match="keys must be"):
        CheckVerdict.from_dict({**stored, "extra": 1})


def test_figures_are_rounded_to_six_significant_digits():
    verdict = _by_check(_run(_group(1), _group(2)))["confidence_mean"]
    mean = verdict.figures["candidate_mean"]

    assert mean == float(f"{mean:.6g}")
    assert isinstance(verdict.figures["candidate_events"], int)


def test_group_stats_round_trip_and_refusals():
    group = _group(1)
    stored = json.loads(json.dumps(group.to_dict()))
    assert GroupStats.from_dict(stored) == group

    with pytest.raises(ValueError, match="unknown group stats keys: colour"):
        GroupStats.from_dict({**stored, "colour": "red"})
    with pytest.raises(ValueError, match="throttled_samples must not exceed"):
        GroupStats.from_dict({**stored, "health_samples": 5, "throttled_samples": 6})
    with pytest.raises(ValueError, match="confidence_bins must be 20"):
        GroupStats.from_dict({**stored, "confidence_bins": [1] * 19})
    with pytest.raises(ValueError, match="confidence_sum"):
        GroupStats.from_dict({**stored, "confidence_sum": stored["count"] + 1.0})


def _verdict(outcome: Outcome) -> CheckVerdict:
    return CheckVerdict(check="throttling", outcome=outcome, summary="", figures={})


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.PASS, Outcome.PASS], Outcome.PASS),
        ([Outcome.PASS, Outcome.INCONCLUSIVE], Outcome.INCONCLUSIVE),
        ([Outcome.INCONCLUSIVE, Outcome.FAIL, Outcome.PASS], Outcome.FAIL),
        ([], Outcome.INCONCLUSIVE),
    ],
)
def test_overall_fail_beats_inconclusive_beats_pass(outcomes, expected):
    assert overall(_verdict(outcome) for outcome in outcomes) is expected
