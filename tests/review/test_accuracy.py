"""review.accuracy against hand-computed figures (no database)."""

from __future__ import annotations

import pytest

from review.accuracy import (
    MIN_REVIEWS,
    TOO_FEW,
    ReviewedCase,
    calibration,
    confusion_matrix,
    proportion,
    stratified_accuracy,
    summarise,
    thumbs_accuracy,
    wilson_interval,
)

# Six reviewed cases, ECE by hand over 15 equal-width bins, bin k = (k/15, (k+1)/15]:
#
#   confidence  correct  bin
#   0.95        yes      14  (0.9333, 1]
#   0.90        yes      13  (0.8667, 0.9333]
#   0.90        no       13
#   1.00        yes      14  (exactly 1.0: the last bin)
#   0.50        no        7  (0.4667, 0.5333]
#   0.30        yes       4  (0.2667, 0.3333]
#
#   bin 4:  n 1, mean conf 0.300, accuracy 1.0 -> |1.0 - 0.300| = 0.700, weight 1/6
#   bin 7:  n 1, mean conf 0.500, accuracy 0.0 -> 0.500, weight 1/6
#   bin 13: n 2, mean conf 0.900, accuracy 0.5 -> 0.400, weight 2/6
#   bin 14: n 2, mean conf 0.975, accuracy 1.0 -> 0.025, weight 2/6
#   ECE = (0.700 + 0.500 + 2 * 0.400 + 2 * 0.025) / 6 = 2.05 / 6 = 0.341667
#   accuracy 4/6; Wilson 95 %: centre (p + z²/2n) / (1 + z²/n) = 0.98679 / 1.64025 = 0.60161,
#   half 1.19494 * sqrt(p(1-p)/n + z²/4n²) = 1.19494 * 0.25242 = 0.30162 -> [0.2999, 0.9032]
SIX = [
    ReviewedCase("dent", "dent", 0.95),
    ReviewedCase("dent", "dent", 0.90),
    ReviewedCase("dent", "scratch", 0.90),
    ReviewedCase("ok", "ok", 1.0),
    ReviewedCase("crush", "ok", 0.50),
    ReviewedCase("scratch", "scratch", 0.30),
]


def test_ece_and_reliability_bins_match_the_hand_computation():
    result = calibration(cases=SIX)
    assert result.ece == pytest.approx(2.05 / 6, abs=1e-9)
    filled = {i: b for i, b in enumerate(result.bins) if b.count}
    assert sorted(filled) == [4, 7, 13, 14]
    assert (filled[14].count, filled[14].confidence_mean, filled[14].accuracy) == (
        2,
        pytest.approx(0.975),
        1.0,
    )
    assert (filled[13].count, filled[13].accuracy) == (2, 0.5)
    assert len(result.bins) == 15
    assert result.bins[14].upper == 1.0
    assert not result.enough  # 6 < MIN_REVIEWS


def test_a_confidence_of_exactly_one_goes_in_the_last_bin_and_zero_in_the_first():
    result = calibration(cases=[ReviewedCase("a", "a", 1.0), ReviewedCase("a", "b", 0.0)])
    assert result.bins[14].count == 1 and result.bins[0].count == 1
    # bin 14: |1 - 1| = 0; bin 0: |0 - 0| = 0
    assert result.ece == pytest.approx(0.0)


def test_accuracy_and_its_wilson_interval():
    summary = summarise(cases=SIX)
    reviewed = summary.reviewed
    assert (reviewed.successes, reviewed.total) == (4, 6)
    assert reviewed.value == pytest.approx(4 / 6)
    assert reviewed.low == pytest.approx(0.2999, abs=1e-4)
    assert reviewed.high == pytest.approx(0.9032, abs=1e-4)
    assert reviewed.note == TOO_FEW


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [
        # 0/10: centre 0.19207 / 1.38415 = 0.13877, half 0.13877 -> [0, 0.2775]
        (0, 10, 0.0, 0.2775),
        # 45/50 = 0.9: centre 0.93842 / 1.07683 = 0.87147, half 0.08507 -> [0.7864, 0.9565]
        (45, 50, 0.7864, 0.9565),
        (30, 30, 0.8865, 1.0),
    ],
)
def test_wilson_interval_values(successes, total, low, high):
    got_low, got_high = wilson_interval(successes=successes, total=total)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_wilson_refuses_impossible_counts_and_gives_the_whole_range_for_none():
    assert wilson_interval(successes=0, total=0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(successes=3, total=2)
    assert proportion(successes=0, total=0).value is None


def test_thumbs_accuracy_is_the_share_up():
    thumbs = thumbs_accuracy(up=45, down=5)
    assert thumbs.value == pytest.approx(0.9)
    assert thumbs.low == pytest.approx(0.7864, abs=1e-4)
    assert thumbs.enough  # 50 >= 30
    assert thumbs_accuracy(up=3, down=1).note == TOO_FEW


def test_confusion_matrix_uses_the_contract_order_then_classes_seen():
    matrix = confusion_matrix(
        cases=[*SIX, ReviewedCase("dent", "puncture", 0.4)],
        class_names=["dent", "scratch", "crush", "ok"],
    )
    assert matrix.labels == ("dent", "scratch", "crush", "ok", "puncture")
    # rows: true class; columns: predicted
    assert matrix.cell("dent", "dent") == 2
    assert matrix.cell("scratch", "dent") == 1
    assert matrix.cell("ok", "crush") == 1
    assert matrix.cell("ok", "ok") == 1
    assert matrix.cell("scratch", "scratch") == 1
    assert matrix.cell("puncture", "dent") == 1
    assert matrix.total == 7
    assert sum(matrix.counts[matrix.labels.index("crush")]) == 0


def _strata(threshold: float = 0.6) -> list[ReviewedCase]:
    # 10 low-confidence cases under the threshold, 4 right; 20 audit cases above it, 18 right.
    low = [
        ReviewedCase("dent", "dent" if i < 4 else "ok", 0.4, "low_confidence", threshold)
        for i in range(10)
    ]
    high = [
        ReviewedCase("ok", "ok" if i < 18 else "dent", 0.9, "audit", threshold) for i in range(20)
    ]
    return low + high


def test_stratified_estimate_weights_the_strata_by_the_share_under_the_threshold():
    # P(low) 0.2: 0.2 * 0.4 + 0.8 * 0.9 = 0.08 + 0.72 = 0.80.
    # Variance, each stratum shrunk by one success and one failure:
    #   low 5/12 = 0.41667 -> 0.41667 * 0.58333 / 12 = 0.020255
    #   high 19/22 = 0.86364 -> 0.86364 * 0.13636 / 22 = 0.005353
    #   0.04 * 0.020255 + 0.64 * 0.005353 = 0.004236 -> sd 0.06509, half 0.1276
    estimate = stratified_accuracy(cases=_strata(), low_share=0.2)
    assert estimate.value == pytest.approx(0.80)
    assert estimate.interval[0] == pytest.approx(0.6724, abs=1e-3)
    assert estimate.interval[1] == pytest.approx(0.9276, abs=1e-3)
    assert (estimate.low.total, estimate.high.total) == (10, 20)
    assert estimate.enough  # 30 reviews


def test_strata_are_reported_apart_and_the_plain_mix_is_biased():
    summary = summarise(cases=_strata(), low_share=0.2)
    assert summary.by_reason["low_confidence"].value == pytest.approx(0.4)
    assert summary.by_reason["audit"].value == pytest.approx(0.9)
    # The plain mix of the reviews (22/30 = 0.733) is not the model's accuracy (0.80).
    assert summary.reviewed.value == pytest.approx(22 / 30)
    assert summary.best is summary.stratified


def test_audit_cases_under_the_threshold_count_in_the_low_stratum():
    cases = [*_strata(), ReviewedCase("ok", "ok", 0.3, "audit", 0.6)]
    estimate = stratified_accuracy(cases=cases, low_share=0.2)
    assert (estimate.low.successes, estimate.low.total) == (5, 11)
    assert estimate.high.total == 20


def test_no_stratified_estimate_without_the_share_or_a_stratum():
    assert "not known" in stratified_accuracy(cases=_strata(), low_share=None).missing
    only_low = [c for c in _strata() if c.reason == "low_confidence"]
    estimate = stratified_accuracy(cases=only_low, low_share=0.2)
    assert estimate.value is None and "audit" in estimate.missing
    summary = summarise(cases=only_low, low_share=0.2)
    assert summary.best is None  # low-confidence cases alone never stand for the model
    with pytest.raises(ValueError):
        stratified_accuracy(cases=_strata(), low_share=1.5)


def test_the_minimum_sample_size_marks_but_still_shows_figures():
    assert MIN_REVIEWS == 30
    few = proportion(successes=5, total=29)
    assert few.value == pytest.approx(5 / 29) and few.note == TOO_FEW
    assert proportion(successes=5, total=30).note == ""
