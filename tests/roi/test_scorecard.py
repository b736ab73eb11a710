"""Stack scorecard: weighted maths, red flags, ranking ties, evidence -> score bands."""

from __future__ import annotations

import pytest

from roi.plan import Provenance
from roi.rules import PlanningInputError
from roi.scorecard import (
    RED_FLAG_MESSAGE,
    Category,
    CategoryScore,
    Scorecard,
    StackCandidate,
    StackEvidence,
    radar_series,
    rank_stacks,
    red_flags,
    suggest_scores,
    weighted_score,
)

ORDER = list(Category)


def stack(name: str, *scores: int, **overrides: int) -> StackCandidate:
    """Scores in the seed's category order; keyword overrides by category name."""
    values = dict(zip(ORDER, scores or (3,) * 8, strict=True))
    for key, value in overrides.items():
        values[Category(key)] = value
    return StackCandidate(
        name=name,
        hardware="Jetson-class module",
        runtime="ONNX Runtime",
        toolchain="ONNX export + INT8 calibration",
        scores={cat: CategoryScore(score, f"evidence for {cat}") for cat, score in values.items()},
    )


@pytest.mark.parametrize(("score", "expected"), [(1, 0.0), (3, 50.0), (5, 100.0)])
def test_uniform_scores_map_onto_0_to_100(score, expected):
    assert weighted_score(candidate=stack("s", *(score,) * 8)) == pytest.approx(expected)


def test_weighted_score_by_hand():
    candidate = stack("s", 5, 4, 3, 2, 1, 5, 4, 3)
    weights = dict(zip(ORDER, (2, 1, 1, 1, 1, 0, 0, 0), strict=True))
    # (s - 1) / 4 per category: 1, 0.75, 0.5, 0.25, 0 weighted 2,1,1,1,1 -> 3.5 of 6 weight.
    assert weighted_score(candidate=candidate, weights=weights) == pytest.approx(3.5 / 6 * 100)
    # Equal weights: (1 + .75 + .5 + .25 + 0 + 1 + .75 + .5) / 8 = 4.75 / 8 = 59.375.
    assert weighted_score(candidate=candidate) == pytest.approx(59.375)


def test_weights_left_out_keep_the_default_of_one():
    candidate = stack("s", 5, 1, 1, 1, 1, 1, 1, 1)
    # Compatibility weighted 3, the other seven 1: 3 x 1 / 10 = 30.
    score = weighted_score(candidate=candidate, weights={Category.MODEL_COMPATIBILITY: 3})
    assert score == pytest.approx(30)


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        (dict.fromkeys(Category, 0.0), "weights"),
        ({Category.UPDATE_STRATEGY: -1}, "weights.update_strategy"),
        ({Category.SECURITY: float("nan")}, "weights.security"),
    ],
)
def test_bad_weights_name_the_field(weights, field):
    with pytest.raises(PlanningInputError) as caught:
        weighted_score(candidate=stack("s"), weights=weights)
    assert list(caught.value.fields) == [field]


@pytest.mark.parametrize(
    ("overrides", "flagged"),
    [
        ({"update_strategy": 3, "observability": 3}, []),
        ({"update_strategy": 2}, [Category.UPDATE_STRATEGY]),
        ({"observability": 1}, [Category.OBSERVABILITY]),
        ({"update_strategy": 1, "observability": 2}, list(Category)[5:7]),
        ({"security": 1, "offline": 1}, []),  # low elsewhere is not a support red flag
    ],
)
def test_red_flag_when_update_strategy_or_observability_is_two_or_less(overrides, flagged):
    flags = red_flags(candidate=stack("s", **overrides))
    assert [flag.category for flag in flags] == flagged
    for flag in flags:
        assert RED_FLAG_MESSAGE in flag.message
        assert f"scored {flag.score}/5" in flag.message


def test_with_the_cap_off_red_flags_only_break_ties():
    strong = stack("strong", 5, 5, 5, 5, 5, 4, 4, 4)
    # Same total (all 4s with two 5s and two 3s) but update strategy at 2 -> flagged.
    flagged = stack("flagged", 5, 5, 5, 5, 5, 5, 2, 5)
    equal_a = stack("equal-a", 4, 4, 4, 4, 4, 4, 4, 4)
    equal_b = stack("equal-b", 4, 4, 4, 4, 4, 4, 4, 4)
    tied = stack("tied", 5, 5, 5, 5, 5, 4, 4, 4)
    ranked = rank_stacks(
        candidates=[equal_a, flagged, strong, equal_b, tied], red_flags_rank_last=False
    )
    assert [r.candidate.name for r in ranked] == [
        "strong",  # 90.625, no flags
        "tied",  # 90.625, no flags, given after "strong"
        "flagged",  # 90.625 as well, but observability 2 is a red flag
        "equal-a",  # 75, kept in input order
        "equal-b",
    ]
    assert [r.position for r in ranked] == [1, 2, 3, 4, 5]
    assert ranked[0].score == pytest.approx(90.625)
    assert ranked[2].score == pytest.approx(90.625)
    assert ranked[2].supportable is False
    assert ranked[0].supportable is True
    assert not any(row.held_back for row in ranked)


def test_a_red_flag_ranks_a_higher_score_below_every_flag_free_stack():
    # 65.6 with update strategy 1/5 against a flag-free 50: the seed says it "will cost you
    # later", so the flag, not the score, decides (the default).
    flagged = stack("flagged", 4, 4, 4, 4, 4, 1, 4, 4)
    plain = stack("plain")  # all 3s: 50
    weak_obs = stack("weak-obs", 5, 5, 5, 5, 5, 5, 2, 5)  # 90.6, observability 2/5
    ranked = rank_stacks(candidates=[flagged, weak_obs, plain])
    assert [r.candidate.name for r in ranked] == ["plain", "weak-obs", "flagged"]
    assert [round(r.score, 1) for r in ranked] == [50.0, 90.6, 65.6]  # scores are not altered
    assert ranked[0].held_back_by == ()
    assert ranked[1].held_back_by == ("plain",)
    assert ranked[2].held_back_by == ("plain",)
    assert "Ranked below plain despite a higher score" in ranked[2].rank_note
    assert "update strategy" in ranked[2].rank_note
    assert "will cost you later" in ranked[2].rank_note
    assert ranked[2].to_dict()["rank_note"] == ranked[2].rank_note


def test_a_flagged_stack_that_scores_lower_anyway_is_not_called_held_back():
    flagged = stack("flagged", 3, 3, 3, 3, 3, 1, 3, 3)
    better = stack("better", 4, 4, 4, 4, 4, 4, 4, 4)
    ranked = rank_stacks(candidates=[flagged, better])
    assert [r.candidate.name for r in ranked] == ["better", "flagged"]
    assert ranked[1].held_back_by == ()
    assert ranked[1].rank_note == ""


def test_scorecard_keeps_the_red_flag_option_and_defaults_it_on():
    flagged = stack("flagged", 4, 4, 4, 4, 4, 1, 4, 4)
    card = Scorecard(candidates=(flagged, stack("plain")))
    assert card.red_flags_rank_last is True
    assert [r.candidate.name for r in card.rank()] == ["plain", "flagged"]
    off = Scorecard.from_dict({**card.to_dict(), "red_flags_rank_last": False})
    assert [r.candidate.name for r in off.rank()] == ["flagged", "plain"]
    stored_without_it = {"candidates": card.to_dict()["candidates"], "weights": {}}
    assert Scorecard.from_dict(stored_without_it).red_flags_rank_last is True
    with pytest.raises(PlanningInputError) as caught:
        Scorecard.from_dict({**card.to_dict(), "red_flags_rank_last": "sometimes"})
    assert set(caught.value.fields) == {"red_flags_rank_last"}


def test_ranking_refuses_duplicate_names_and_missing_categories():
    incomplete = stack("b")
    incomplete = StackCandidate(
        name="b",
        hardware="",
        runtime="",
        toolchain="",
        scores={k: v for k, v in incomplete.scores.items() if k is not Category.SECURITY},
    )
    with pytest.raises(PlanningInputError) as caught:
        rank_stacks(candidates=[stack("A"), stack("a"), incomplete])
    assert set(caught.value.fields) == {"candidates[1].name", "candidates[2].scores.security"}


@pytest.mark.parametrize("bad", [0, 6, 2.5, True])
def test_scores_outside_one_to_five_name_the_category(bad):
    with pytest.raises(PlanningInputError) as caught:
        weighted_score(candidate=stack("s", quantization=bad))
    assert list(caught.value.fields) == ["scores.quantization"]


def test_radar_series_follows_the_seed_category_order():
    series = radar_series(candidate=stack("s", 1, 2, 3, 4, 5, 4, 3, 2))
    assert series.values == (1, 2, 3, 4, 5, 4, 3, 2)
    assert series.categories[0] == "Model compatibility & conversion maturity"
    assert series.categories[-1] == "Security posture"


def test_scorecard_round_trips_and_reports_bad_scores_per_field():
    card = Scorecard(candidates=(stack("a"), stack("b", 4, 4, 4, 4, 4, 4, 4, 4)))
    assert Scorecard.from_dict(card.to_dict()) == card
    assert [r.candidate.name for r in card.rank()] == ["b", "a"]
    data = card.to_dict()
    data["candidates"][1]["scores"]["offline"]["score"] = "six"
    data["weights"]["security"] = "heavy"
    with pytest.raises(PlanningInputError) as caught:
        Scorecard.from_dict(data)
    assert set(caught.value.fields) == {"candidates[1].scores.offline", "weights.security"}


# --- Evidence -> suggested score ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("coverage", "score"),
    [(1.0, 5), (0.999, 4), (0.98, 4), (0.9799, 3), (0.95, 3), (0.90, 2), (0.8999, 1)],
)
def test_operator_coverage_bands(coverage, score):
    suggestion = suggest_scores(evidence=StackEvidence(operator_coverage=coverage))
    assert suggestion[Category.MODEL_COMPATIBILITY].score == score


@pytest.mark.parametrize(
    ("drop", "score"),
    [(-0.2, 5), (0.5, 5), (0.51, 4), (1.0, 4), (1.01, 3), (2.0, 3), (5.0, 2), (5.1, 1)],
)
def test_int8_accuracy_drop_bands(drop, score):
    suggestion = suggest_scores(evidence=StackEvidence(int8_accuracy_drop_points=drop))
    assert suggestion[Category.QUANTIZATION].score == score
    assert "MLPerf" in suggestion[Category.QUANTIZATION].reasoning


@pytest.mark.parametrize(
    ("p95", "score"), [(50, 5), (51, 4), (80, 4), (100, 3), (101, 2), (150, 2), (151, 1)]
)
def test_p95_against_budget_bands(p95, score):
    evidence = StackEvidence(p95_latency_ms=p95, latency_budget_ms=100, source="run 7")
    suggestion = suggest_scores(evidence=evidence)[Category.PERFORMANCE]
    assert suggestion.score == score
    assert suggestion.evidence["ratio"] == pytest.approx(p95 / 100)
    assert suggestion.reasoning.endswith("(lab: run 7).")
    assert suggestion.provenance is Provenance.LAB


def test_thermal_score_uses_the_worse_of_10_and_20_minutes():
    evidence = StackEvidence(slowdown_after_10_min=0.04, slowdown_after_20_min=0.12)
    suggestion = suggest_scores(evidence=evidence)[Category.POWER_THERMAL]
    assert suggestion.score == 3  # 12 % is within <= 20 %, not <= 10 %
    assert "after 20 minutes" in suggestion.reasoning
    only_ten = suggest_scores(evidence=StackEvidence(slowdown_after_10_min=0.05))
    assert only_ten[Category.POWER_THERMAL].score == 5


def test_suggestions_say_where_the_evidence_was_measured():
    evidence = StackEvidence(
        operator_coverage=1.0,
        source="validation run #2",
        measured_on="validation worker CPU (EPYC) with the Android NPU (NNAPI) profile",
    )
    suggestion = suggest_scores(evidence=evidence)[Category.MODEL_COMPATIBILITY]
    assert suggestion.reasoning.endswith(
        "(lab: validation run #2; measured on validation worker CPU (EPYC) with the Android NPU "
        "(NNAPI) profile)."
    )
    assert suggestion.to_dict()["provenance"] == "lab"
    assert suggestion.to_dict()["measured_on"].startswith("validation worker CPU")


def test_only_measured_categories_get_suggestions():
    assert suggest_scores(evidence=StackEvidence()) == {}
    suggestion = suggest_scores(evidence=StackEvidence(operator_coverage=1.0))
    assert list(suggestion) == [Category.MODEL_COMPATIBILITY]
    assert suggestion[Category.MODEL_COMPATIBILITY].as_category_score().score == 5


@pytest.mark.parametrize(
    ("evidence", "field"),
    [
        (StackEvidence(p95_latency_ms=80), "latency_budget_ms"),
        (StackEvidence(p95_latency_ms=80, latency_budget_ms=0), "latency_budget_ms"),
        (StackEvidence(operator_coverage=1.2), "operator_coverage"),
    ],
)
def test_bad_evidence_names_the_field(evidence, field):
    with pytest.raises(PlanningInputError) as caught:
        suggest_scores(evidence=evidence)
    assert list(caught.value.fields) == [field]


@pytest.mark.parametrize("entry", [["Jetson"], "Jetson", 7, None])
def test_a_candidate_that_is_not_an_object_is_named_with_the_other_errors(entry):
    with pytest.raises(PlanningInputError) as caught:
        Scorecard.from_dict({"candidates": [entry, {"name": ""}]})
    assert caught.value.fields["candidates[0]"] == [
        "A candidate must be an object with a name and scores."
    ]
    assert "candidates[1].name" in caught.value.fields
