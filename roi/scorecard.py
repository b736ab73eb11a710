"""NPU/edge stack scorecard: the seed's eight categories, weights, ranking and red flags.

A candidate stack is hardware + runtime + toolchain, scored 1-5 per category with an evidence
note. The seed's point is that benchmarks are not enough: "whether the stack lets you deliver a
stable, updatable inference product" decides. Hence the red flag: a score of 2 or less on update
strategy or on observability is flagged whatever the total, because "it will cost you
later - usually in the form of 'we can't support this in the field'".

Weighted score (0-100)::

    score = sum(w_c * (s_c - 1) / 4) / sum(w_c) * 100

so all 1s give 0 and all 5s give 100 (the 1-5 scale is stretched over the full 0-100 range;
``s / 5`` would make the worst possible stack score 20). Weights default to 1 for every category;
a weight of 0 leaves a category out of the total; at least one weight must be positive.

Ranking: a stack with a red flag ranks below every stack without one, whatever its score (the
seed: a stack weak on update strategy or observability "will cost you later"); its weighted score
is still shown, and :attr:`RankedStack.held_back` says when the flag, not the score, placed it.
``red_flags_rank_last=False`` (an OpsHero option, default on) ranks on score alone and lets red
flags only break ties. Within each group: highest score first; equal scores (to 1e-9) rank the
stack with fewer red flags first, then keep the order in which the candidates were given
(stable), so re-ranking never shuffles ties.

Measured evidence -> suggested score (:func:`suggest_scores`). Every suggestion carries the
evidence's provenance and the hardware it was measured on (``StackEvidence.measured_on``) and says
so in its reasoning ("lab: validation run #3 ...; measured on the validation worker CPU ... with
the ... profile"): a lab figure is never passed off as the stack's own. Boundaries are inclusive
on the good side (a value exactly on a bound gets the better score):

================================  ======  ======  ======  ======  =====
evidence                          5       4       3       2       1
================================  ======  ======  ======  ======  =====
operator coverage on the target   = 100 % >= 98 % >= 95 % >= 90 % below
INT8 accuracy drop (points)       <= 0.5  <= 1.0  <= 2.0  <= 5.0  above
P95 latency / latency budget      <= 0.5  <= 0.8  <= 1.0  <= 1.5  above
worst slowdown after 10/20 min    <= 5 %  <= 10 % <= 20 % <= 35 % above
================================  ======  ======  ======  ======  =====

Why these bounds: a single unsupported operator falls back to CPU or fails conversion, so only
full coverage earns a 5. MLPerf edge accepts 99 % of FP32 accuracy (about 1 point), so <= 1
point is a 4 and half of that a 5. Meeting the latency budget at P95 with no headroom is a 3;
headroom for real payloads earns more. Sustained slowdown is the latency increase after 10 and
20 minutes of continuous load against the first minute; the worse of the two counts, because the
seed asks "does it throttle after 10/20 minutes?" and "can it run continuously?".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from roi.plan import Provenance
from roi.vocabulary import PlanningInputError, raise_for_field_errors


class Category(StrEnum):
    MODEL_COMPATIBILITY = "model_compatibility"
    PERFORMANCE = "performance"
    QUANTIZATION = "quantization"
    POWER_THERMAL = "power_thermal"
    OFFLINE = "offline"
    UPDATE_STRATEGY = "update_strategy"
    OBSERVABILITY = "observability"
    SECURITY = "security"


CATEGORY_LABELS: dict[Category, str] = {
    Category.MODEL_COMPATIBILITY: "Model compatibility & conversion maturity",
    Category.PERFORMANCE: "Performance under real input sizes",
    Category.QUANTIZATION: "Quantization support",
    Category.POWER_THERMAL: "Power and thermal behavior",
    Category.OFFLINE: "Offline capability",
    Category.UPDATE_STRATEGY: "Update strategy",
    Category.OBSERVABILITY: "Observability and debugging",
    Category.SECURITY: "Security posture",
}

# The seed's questions per category: shown next to each score in the editor.
CATEGORY_QUESTIONS: dict[Category, tuple[str, ...]] = {
    Category.MODEL_COMPATIBILITY: (
        "Can you import your model format cleanly?",
        "Are the operations you use supported (e.g., custom layers)?",
    ),
    Category.PERFORMANCE: (
        "Test with representative payloads (image resolutions, sequence lengths, batch sizes).",
        "Measure latency distribution, not just averages.",
    ),
    Category.QUANTIZATION: (
        "Can you run INT8/FP16 safely?",
        "What accuracy drop should you expect?",
    ),
    Category.POWER_THERMAL: (
        "Does it throttle after 10/20 minutes?",
        "Can it run continuously in your environment?",
    ),
    Category.OFFLINE: (
        "Does inference work with no network?",
        "What happens to logs and telemetry?",
    ),
    Category.UPDATE_STRATEGY: (
        "How do you roll out model changes?",
        "Can you do staged rollouts and rollback?",
    ),
    Category.OBSERVABILITY: (
        "Can you capture inputs/outputs safely?",
        "Can you measure drift signals?",
    ),
    Category.SECURITY: (
        "Device identity, signed models, encrypted storage, least-privilege access.",
    ),
}

MIN_SCORE = 1
MAX_SCORE = 5
RED_FLAG_MAX_SCORE = 2
RED_FLAG_CATEGORIES = (Category.UPDATE_STRATEGY, Category.OBSERVABILITY)
RED_FLAG_MESSAGE = "You will not be able to support this in the field."
# Default of the ranking rule "a red-flagged stack ranks below every flag-free stack".
RED_FLAGS_RANK_LAST = True
MAX_WEIGHT = 100.0


@dataclass(frozen=True)
class CategoryScore:
    """A 1-5 score and the evidence behind it (a test, a measurement, a vendor document)."""

    score: int
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "evidence": self.evidence}


@dataclass(frozen=True, kw_only=True)
class StackCandidate:
    """A hardware + runtime + toolchain combination under evaluation."""

    name: str
    hardware: str
    runtime: str
    toolchain: str
    scores: Mapping[Category, CategoryScore]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hardware": self.hardware,
            "runtime": self.runtime,
            "toolchain": self.toolchain,
            "scores": {
                str(cat): self.scores[cat].to_dict() for cat in Category if cat in self.scores
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "") -> StackCandidate:
        """Parse a stored candidate; errors are keyed ``{prefix}scores.<category>`` etc."""
        errors: dict[str, list[str]] = {}
        text: dict[str, str] = {}
        for key in ("name", "hardware", "runtime", "toolchain"):
            value = data.get(key)
            if value is None or not str(value).strip():
                if key == "name":
                    errors[f"{prefix}name"] = ["Give the stack a name."]
                text[key] = ""
            else:
                text[key] = str(value).strip()
        scores: dict[Category, CategoryScore] = {}
        raw_scores = data.get("scores") or {}
        if not isinstance(raw_scores, Mapping):
            errors[f"{prefix}scores"] = ["Scores must map categories to scores."]
            raw_scores = {}
        for key, raw in raw_scores.items():
            try:
                category = Category(str(key))
            except ValueError:
                errors[f"{prefix}scores.{key}"] = ["Unknown category."]
                continue
            if isinstance(raw, Mapping):
                value, evidence = raw.get("score"), str(raw.get("evidence", "") or "")
            else:
                value, evidence = raw, ""
            number = _whole_number(value)
            if number is None:
                errors[f"{prefix}scores.{category}"] = ["Score with a whole number from 1 to 5."]
                continue
            scores[category] = CategoryScore(number, evidence)
        raise_for_field_errors(errors, what="Stack candidate")
        candidate = cls(scores=scores, **text)
        validate_candidate(candidate=candidate, prefix=prefix)
        return candidate


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def default_weights() -> dict[Category, float]:
    """Equal weights: every category counts the same until the ops leader says otherwise."""
    return dict.fromkeys(Category, 1.0)


def validate_candidate(*, candidate: StackCandidate, prefix: str = "") -> None:
    """All eight categories scored with whole numbers 1-5; raise per field otherwise."""
    errors: dict[str, list[str]] = {}
    if not candidate.name.strip():
        errors[f"{prefix}name"] = ["Give the stack a name."]
    for category in Category:
        entry = candidate.scores.get(category)
        key = f"{prefix}scores.{category}"
        if entry is None:
            errors[key] = ["Score this category (1-5)."]
        elif isinstance(entry.score, bool) or not isinstance(entry.score, int):
            errors[key] = ["Score with a whole number from 1 to 5."]
        elif not MIN_SCORE <= entry.score <= MAX_SCORE:
            errors[key] = [f"{entry.score} is outside 1-5."]
    for key in candidate.scores:
        if key not in Category.__members__.values():
            errors[f"{prefix}scores.{key}"] = ["Unknown category."]
    raise_for_field_errors(errors, what="Stack candidate")


def validate_weights(*, weights: Mapping[Category, float]) -> None:
    errors: dict[str, list[str]] = {}
    for key, weight in weights.items():
        name = f"weights.{key}"
        if key not in Category.__members__.values():
            errors[name] = ["Unknown category."]
        elif isinstance(weight, bool) or not isinstance(weight, int | float):
            errors[name] = ["Enter a number."]
        elif not math.isfinite(weight) or weight < 0:
            errors[name] = ["A weight is a number of 0 or more."]
        elif weight > MAX_WEIGHT:
            errors[name] = [f"Keep weights at or below {MAX_WEIGHT:g}."]
    if not errors and not any(weights.get(cat, 0) > 0 for cat in Category):
        errors["weights"] = ["At least one category needs a weight above 0."]
    raise_for_field_errors(errors, what="Scorecard weights")


@dataclass(frozen=True)
class RedFlag:
    category: Category
    score: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"category": str(self.category), "score": self.score, "message": self.message}


def red_flags(*, candidate: StackCandidate) -> tuple[RedFlag, ...]:
    """Update strategy or observability at 2 or below: not supportable in the field."""
    flags = []
    for category in RED_FLAG_CATEGORIES:
        entry = candidate.scores.get(category)
        if entry is not None and entry.score <= RED_FLAG_MAX_SCORE:
            flags.append(
                RedFlag(
                    category,
                    entry.score,
                    f"{CATEGORY_LABELS[category]} scored {entry.score}/5. {RED_FLAG_MESSAGE} "
                    "(playbook: a stack weak here \u201cwill cost you later\u201d).",
                )
            )
    return tuple(flags)


def weighted_score(
    *, candidate: StackCandidate, weights: Mapping[Category, float] | None = None
) -> float:
    """The candidate's weighted score, 0 (all 1s) to 100 (all 5s).

    Categories missing from ``weights`` keep the default weight of 1.
    """
    weights = {**default_weights(), **(weights or {})}
    validate_weights(weights=weights)
    validate_candidate(candidate=candidate)
    total = sum(weights.values())
    points = sum(
        weight * (candidate.scores[cat].score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)
        for cat, weight in weights.items()
    )
    return points / total * 100


@dataclass(frozen=True)
class RankedStack:
    """A candidate's place in the ranking; ``held_back`` names the flag-free stacks that its
    red flags put ahead of it although they scored lower (empty when the score decided)."""

    position: int
    candidate: StackCandidate
    score: float
    red_flags: tuple[RedFlag, ...]
    held_back_by: tuple[str, ...] = ()

    @property
    def supportable(self) -> bool:
        return not self.red_flags

    @property
    def held_back(self) -> bool:
        return bool(self.held_back_by)

    @property
    def rank_note(self) -> str:
        """Why a higher-scoring stack ranks lower, in words; empty when the score decided."""
        if not self.held_back_by:
            return ""
        weak = " and ".join(CATEGORY_LABELS[flag.category].lower() for flag in self.red_flags)
        ahead = ", ".join(self.held_back_by)
        return (
            f"Ranked below {ahead} despite a higher score: weak {weak} \u201cwill cost you "
            "later\u201d, so a red-flagged stack ranks below every stack without a red flag."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "candidate": self.candidate.to_dict(),
            "score": self.score,
            "red_flags": [flag.to_dict() for flag in self.red_flags],
            "supportable": self.supportable,
            "held_back_by": list(self.held_back_by),
            "rank_note": self.rank_note,
        }


def rank_stacks(
    *,
    candidates: Sequence[StackCandidate],
    weights: Mapping[Category, float] | None = None,
    red_flags_rank_last: bool = RED_FLAGS_RANK_LAST,
) -> list[RankedStack]:
    """Rank candidates: flag-free stacks first (unless ``red_flags_rank_last`` is False), then
    by weighted score (see the module docstring for tie-breaking)."""
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for index, candidate in enumerate(candidates):
        try:
            validate_candidate(candidate=candidate, prefix=f"candidates[{index}].")
        except PlanningInputError as exc:
            errors.update(exc.fields)
        key = candidate.name.strip().lower()
        if key in seen:
            errors[f"candidates[{index}].name"] = [
                f"Same name as candidate {seen[key] + 1}; names must be unique."
            ]
        seen.setdefault(key, index)
    raise_for_field_errors(errors, what="Scorecard")
    scored = [
        (
            round(weighted_score(candidate=candidate, weights=weights), 9),
            red_flags(candidate=candidate),
            index,
            candidate,
        )
        for index, candidate in enumerate(candidates)
    ]
    scored.sort(
        key=lambda row: (red_flags_rank_last and bool(row[1]), -row[0], len(row[1]), row[2])
    )
    ranked = []
    for position, (score, flags, _index, candidate) in enumerate(scored, start=1):
        held_back_by: tuple[str, ...] = ()
        if flags and red_flags_rank_last:
            held_back_by = tuple(
                other.name
                for other_score, other_flags, _i, other in scored[: position - 1]
                if not other_flags and other_score < score
            )
        ranked.append(
            RankedStack(
                position=position,
                candidate=candidate,
                score=score,
                red_flags=flags,
                held_back_by=held_back_by,
            )
        )
    return ranked


@dataclass(frozen=True)
class RadarSeries:
    """Data for a radar chart: category labels and the candidate's 1-5 scores, same order."""

    name: str
    categories: tuple[str, ...]
    values: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "categories": list(self.categories), "values": list(self.values)}


def radar_series(*, candidate: StackCandidate) -> RadarSeries:
    """Categories in the seed's order; close the polygon in the chart if it needs it."""
    validate_candidate(candidate=candidate)
    return RadarSeries(
        name=candidate.name,
        categories=tuple(CATEGORY_LABELS[cat] for cat in Category),
        values=tuple(candidate.scores[cat].score for cat in Category),
    )


@dataclass(frozen=True, kw_only=True)
class Scorecard:
    """A saved comparison: the candidates and the weights the ops leader chose."""

    candidates: tuple[StackCandidate, ...]
    weights: Mapping[Category, float] = field(default_factory=default_weights)
    red_flags_rank_last: bool = RED_FLAGS_RANK_LAST

    def rank(self) -> list[RankedStack]:
        return rank_stacks(
            candidates=self.candidates,
            weights=self.weights,
            red_flags_rank_last=self.red_flags_rank_last,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "weights": {str(cat): float(weight) for cat, weight in self.weights.items()},
            "red_flags_rank_last": self.red_flags_rank_last,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scorecard:
        errors: dict[str, list[str]] = {}
        candidates: list[StackCandidate] = []
        for index, raw in enumerate(data.get("candidates") or []):
            if not isinstance(raw, Mapping):
                errors[f"candidates[{index}]"] = [
                    "A candidate must be an object with a name and scores."
                ]
                continue
            try:
                candidates.append(StackCandidate.from_dict(raw, prefix=f"candidates[{index}]."))
            except PlanningInputError as exc:
                errors.update(exc.fields)
        weights: dict[Category, float] = default_weights()
        for key, raw in dict(data.get("weights") or {}).items():
            try:
                category = Category(str(key))
            except ValueError:
                errors[f"weights.{key}"] = ["Unknown category."]
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                errors[f"weights.{key}"] = ["Enter a number."]
                continue
            try:
                weights[category] = float(raw)
            except ValueError:
                errors[f"weights.{key}"] = ["Enter a number."]
        rank_last = data.get("red_flags_rank_last", RED_FLAGS_RANK_LAST)
        if not isinstance(rank_last, bool):
            errors["red_flags_rank_last"] = ["Answer true or false."]
        raise_for_field_errors(errors, what="Scorecard")
        validate_weights(weights=weights)
        return cls(
            candidates=tuple(candidates), weights=weights, red_flags_rank_last=bool(rank_last)
        )


# --- Measured evidence -> suggested score ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StackEvidence:
    """What OpsHero measured about a stack; ``None`` means not measured.

    ``operator_coverage`` is the share (0-1) of the model's operators the target runs natively.
    ``int8_accuracy_drop_points`` is FP32 accuracy minus INT8 accuracy, in percentage points.
    ``slowdown_after_10_min`` / ``_20_min`` are the P95 latency increase against the first
    minute of continuous load (0.1 = 10 % slower).

    ``provenance`` and ``measured_on`` say where it was measured: today every source is a lab
    one (the validation worker's CPU, with a target profile's operator table), so every
    suggestion says "lab" and names that hardware rather than pass for a figure from the stack.
    """

    operator_coverage: float | None = None
    int8_accuracy_drop_points: float | None = None
    p95_latency_ms: float | None = None
    latency_budget_ms: float | None = None
    slowdown_after_10_min: float | None = None
    slowdown_after_20_min: float | None = None
    source: str = ""
    provenance: Provenance = Provenance.LAB
    measured_on: str = ""


@dataclass(frozen=True)
class SuggestedScore:
    category: Category
    score: int
    reasoning: str
    evidence: dict[str, float] = field(default_factory=dict)
    provenance: Provenance = Provenance.LAB
    measured_on: str = ""

    def as_category_score(self) -> CategoryScore:
        return CategoryScore(self.score, self.reasoning)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "score": self.score,
            "reasoning": self.reasoning,
            "evidence": dict(self.evidence),
            "provenance": str(self.provenance),
            "measured_on": self.measured_on,
        }


# (bound, score) from best to worst; "higher is better" compares value >= bound.
OPERATOR_COVERAGE_BANDS: tuple[tuple[float, int], ...] = ((1.0, 5), (0.98, 4), (0.95, 3), (0.90, 2))
INT8_DROP_BANDS: tuple[tuple[float, int], ...] = ((0.5, 5), (1.0, 4), (2.0, 3), (5.0, 2))
LATENCY_RATIO_BANDS: tuple[tuple[float, int], ...] = ((0.5, 5), (0.8, 4), (1.0, 3), (1.5, 2))
SLOWDOWN_BANDS: tuple[tuple[float, int], ...] = ((0.05, 5), (0.10, 4), (0.20, 3), (0.35, 2))


def _band_higher_better(value: float, bands: Sequence[tuple[float, int]]) -> tuple[int, str]:
    for bound, score in bands:
        if value >= bound:
            return score, f">= {bound:g}"
    return 1, f"< {bands[-1][0]:g}"


def _band_lower_better(value: float, bands: Sequence[tuple[float, int]]) -> tuple[int, str]:
    for bound, score in bands:
        if value <= bound:
            return score, f"<= {bound:g}"
    return 1, f"> {bands[-1][0]:g}"


def _evidence_errors(evidence: StackEvidence) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    checks = {
        "operator_coverage": (0.0, 1.0),
        "int8_accuracy_drop_points": (-100.0, 100.0),
        "p95_latency_ms": (0.0, 86_400_000.0),
        "latency_budget_ms": (0.0, 86_400_000.0),
        "slowdown_after_10_min": (-1.0, 100.0),
        "slowdown_after_20_min": (-1.0, 100.0),
    }
    for name, (low, high) in checks.items():
        value = getattr(evidence, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[name] = ["Enter a number."]
        elif not math.isfinite(value) or not low <= value <= high:
            errors[name] = [f"Expected a value between {low:g} and {high:g}."]
    if evidence.latency_budget_ms is not None and evidence.latency_budget_ms <= 0:
        errors["latency_budget_ms"] = ["The latency budget must be above 0 ms."]
    if (evidence.p95_latency_ms is None) != (evidence.latency_budget_ms is None):
        missing = "latency_budget_ms" if evidence.latency_budget_ms is None else "p95_latency_ms"
        errors.setdefault(missing, []).append("P95 latency and the budget go together.")
    return errors


def suggest_scores(*, evidence: StackEvidence) -> dict[Category, SuggestedScore]:
    """Turn measured evidence into suggested scores, each with the reasoning shown to people.

    Only categories with evidence get a suggestion; the mapping is in the module docstring.
    """
    raise_for_field_errors(_evidence_errors(evidence), what="Stack evidence")
    provenance = Provenance(evidence.provenance)
    origin = "; ".join(
        part
        for part in (
            evidence.source,
            f"measured on {evidence.measured_on}" if evidence.measured_on else "",
        )
        if part
    )
    where = f" ({provenance}: {origin})" if origin else f" ({provenance})"
    suggestions: dict[Category, SuggestedScore] = {}
    if evidence.operator_coverage is not None:
        coverage = evidence.operator_coverage
        score, band = _band_higher_better(coverage, OPERATOR_COVERAGE_BANDS)
        suggestions[Category.MODEL_COMPATIBILITY] = SuggestedScore(
            Category.MODEL_COMPATIBILITY,
            score,
            f"{coverage * 100:.4g} % of operators run natively on the target (band {band}) "
            f"-> {score}/5{where}.",
            {"operator_coverage": coverage},
        )
    if evidence.int8_accuracy_drop_points is not None:
        drop = evidence.int8_accuracy_drop_points
        score, band = _band_lower_better(drop, INT8_DROP_BANDS)
        suggestions[Category.QUANTIZATION] = SuggestedScore(
            Category.QUANTIZATION,
            score,
            f"INT8 loses {drop:.3g} accuracy points against FP32 (band {band}; MLPerf edge "
            f"accepts about 1 point) -> {score}/5{where}.",
            {"int8_accuracy_drop_points": drop},
        )
    if evidence.p95_latency_ms is not None and evidence.latency_budget_ms is not None:
        ratio = evidence.p95_latency_ms / evidence.latency_budget_ms
        score, band = _band_lower_better(ratio, LATENCY_RATIO_BANDS)
        suggestions[Category.PERFORMANCE] = SuggestedScore(
            Category.PERFORMANCE,
            score,
            f"P95 {evidence.p95_latency_ms:.4g} ms is {ratio:.2f} of the "
            f"{evidence.latency_budget_ms:.4g} ms budget (band {band}) -> {score}/5{where}.",
            {
                "p95_latency_ms": evidence.p95_latency_ms,
                "latency_budget_ms": evidence.latency_budget_ms,
                "ratio": ratio,
            },
        )
    slowdowns = {
        minutes: value
        for minutes, value in (
            (10, evidence.slowdown_after_10_min),
            (20, evidence.slowdown_after_20_min),
        )
        if value is not None
    }
    if slowdowns:
        minutes, worst = max(slowdowns.items(), key=lambda item: (item[1], item[0]))
        score, band = _band_lower_better(worst, SLOWDOWN_BANDS)
        suggestions[Category.POWER_THERMAL] = SuggestedScore(
            Category.POWER_THERMAL,
            score,
            f"P95 latency {worst * 100:.3g} % slower after {minutes} minutes of continuous load "
            f"(worst measured; band {band}) -> {score}/5{where}.",
            {f"slowdown_after_{m}_min": value for m, value in slowdowns.items()},
        )
    return {
        category: replace(item, provenance=provenance, measured_on=evidence.measured_on)
        for category, item in suggestions.items()
    }


__all__ = [
    "CATEGORY_LABELS",
    "CATEGORY_QUESTIONS",
    "RED_FLAGS_RANK_LAST",
    "RED_FLAG_MESSAGE",
    "Category",
    "CategoryScore",
    "RadarSeries",
    "RankedStack",
    "RedFlag",
    "Scorecard",
    "StackCandidate",
    "StackEvidence",
    "SuggestedScore",
    "default_weights",
    "radar_series",
    "rank_stacks",
    "red_flags",
    "suggest_scores",
    "validate_candidate",
    "validate_weights",
    "weighted_score",
]
