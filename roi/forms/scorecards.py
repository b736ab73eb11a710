"""The stack scorecard editor: candidates, scores, weights and red-flag notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opshero.errors import DomainError

from ..reports import format_number
from ..scorecard import CATEGORY_LABELS, CATEGORY_QUESTIONS, Category, default_weights
from .common import ErrorSlot, slot_id

CANDIDATE_TEXT = ("name", "hardware", "runtime", "toolchain")
SCORE_CHOICES = ("1", "2", "3", "4", "5")


@dataclass
class ScoreCell:
    category: str
    score: str
    evidence: str
    errors: list[str]
    slot: str
    score_name: str
    evidence_name: str


@dataclass
class CandidateColumn:
    index: int
    name: str
    hardware: str
    runtime: str
    toolchain: str
    cells: dict[str, ScoreCell]
    errors: dict[str, list[str]]


class ScorecardForm:
    """Candidates x the eight categories, weights and a name, as posted.

    Field names: ``c<i>.name`` / ``.hardware`` / ``.runtime`` / ``.toolchain``,
    ``c<i>.<category>.score`` / ``.evidence``, ``w.<category>``; ``count`` says how many
    candidate columns were on the page.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
        name: str = "",
        max_candidates: int = 8,
    ) -> None:
        self.is_bound = data is not None
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.max_candidates = max_candidates
        if data is not None:
            try:
                count = int(str(data.get("count", "0")))
            except ValueError:
                count = 0
            count = max(0, min(count, max_candidates))
            self.name = str(data.get("name", "")).strip()
            self.candidates = [self._candidate_from_post(data, i) for i in range(count)]
            self.weights = {str(cat): str(data.get(f"w.{cat}", "")).strip() for cat in Category}
            self.red_flags_rank_last = bool(data.get("red_flags_rank_last"))
        else:
            initial = initial or {}
            self.name = name
            self.candidates = [
                self._candidate_from_dict(raw) for raw in initial.get("candidates", [])
            ]
            weights = {
                **{str(k): v for k, v in default_weights().items()},
                **(initial.get("weights") or {}),
            }
            self.weights = {str(cat): format_number(float(weights[str(cat)])) for cat in Category}
            self.red_flags_rank_last = bool(initial.get("red_flags_rank_last", True))

    @staticmethod
    def _candidate_from_post(data: Mapping[str, Any], index: int) -> dict[str, Any]:
        prefix = f"c{index}."
        candidate: dict[str, Any] = {
            key: str(data.get(prefix + key, "")).strip() for key in CANDIDATE_TEXT
        }
        candidate["scores"] = {
            str(cat): {
                "score": str(data.get(f"{prefix}{cat}.score", "")).strip(),
                "evidence": str(data.get(f"{prefix}{cat}.evidence", "")).strip(),
            }
            for cat in Category
        }
        return candidate

    @staticmethod
    def _candidate_from_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
        candidate = {key: str(raw.get(key, "") or "") for key in CANDIDATE_TEXT}
        scores = raw.get("scores") or {}
        candidate["scores"] = {
            str(cat): {
                "score": str((scores.get(str(cat)) or {}).get("score", "")),
                "evidence": str((scores.get(str(cat)) or {}).get("evidence", "")),
            }
            for cat in Category
        }
        return candidate

    def add_candidate(self) -> None:
        if len(self.candidates) < self.max_candidates:
            blank: dict[str, Any] = dict.fromkeys(CANDIDATE_TEXT, "")
            blank["scores"] = {str(cat): {"score": "", "evidence": ""} for cat in Category}
            self.candidates.append(blank)

    def remove_candidate(self, index: int) -> None:
        if 0 <= index < len(self.candidates):
            del self.candidates[index]

    def cleaned(self) -> dict[str, Any]:
        """Candidates and weights in ``roi.scorecard.Scorecard.from_dict`` shape."""
        candidates = []
        for candidate in self.candidates:
            scores = {}
            for cat, cell in candidate["scores"].items():
                if cell["score"] != "":
                    scores[cat] = {"score": cell["score"], "evidence": cell["evidence"]}
            candidates.append({**{k: candidate[k] for k in CANDIDATE_TEXT}, "scores": scores})
        weights: dict[str, Any] = {}
        for cat, value in self.weights.items():
            try:
                weights[cat] = float(value)
            except ValueError:
                self.errors.setdefault(f"w.{cat}", []).append("Enter a number.")
        return {
            "name": self.name,
            "candidates": candidates,
            "weights": weights,
            "red_flags_rank_last": self.red_flags_rank_last,
        }

    def is_valid(self) -> bool:
        """Read what was posted into ``cleaned_data``; True when nothing needs fixing yet."""
        self.cleaned_data = self.cleaned()
        return not self.errors

    def add_domain_error(self, error: DomainError) -> None:
        placed = False
        for key, reasons in error.fields.items():
            target = self._field_for(key)
            if target:
                self.errors.setdefault(target, []).extend(reasons)
                placed = True
        if not placed:
            self.non_field_errors.append(error.message)

    @staticmethod
    def _field_for(key: str) -> str | None:
        # candidates[2].scores.update_strategy -> c2.update_strategy.score
        if key.startswith("candidates[") and "]." in key:
            index, rest = key[len("candidates[") :].split("].", 1)
            if rest.startswith("scores."):
                return f"c{index}.{rest[len('scores.') :]}.score"
            return f"c{index}.{rest}"
        if key.startswith("weights."):
            return f"w.{key[len('weights.') :]}"
        if key in ("weights", "candidates", "name"):
            return key
        return None

    def columns(self) -> list[CandidateColumn]:
        columns = []
        for index, candidate in enumerate(self.candidates):
            cells = {}
            for cat in Category:
                key = str(cat)
                score_name = f"c{index}.{key}.score"
                cells[key] = ScoreCell(
                    category=key,
                    score=candidate["scores"][key]["score"],
                    evidence=candidate["scores"][key]["evidence"],
                    errors=self.errors.get(score_name, []),
                    slot=slot_id(score_name),
                    score_name=score_name,
                    evidence_name=f"c{index}.{key}.evidence",
                )
            errors = {key: self.errors.get(f"c{index}.{key}", []) for key in CANDIDATE_TEXT}
            columns.append(
                CandidateColumn(
                    index=index,
                    cells=cells,
                    errors=errors,
                    **{key: candidate[key] for key in CANDIDATE_TEXT},
                )
            )
        return columns

    def categories(self) -> list[dict[str, Any]]:
        return [
            {
                "key": str(cat),
                "label": CATEGORY_LABELS[cat],
                "questions": CATEGORY_QUESTIONS[cat],
                "weight": self.weights[str(cat)],
                "weight_name": f"w.{cat}",
                "weight_errors": self.errors.get(f"w.{cat}", []),
                "slot": slot_id(f"w.{cat}"),
                "red_flag": cat in (Category.UPDATE_STRATEGY, Category.OBSERVABILITY),
            }
            for cat in Category
        ]

    def error_slots(self) -> list[ErrorSlot]:
        names = ["name", "candidates", "weights"]
        for index in range(len(self.candidates)):
            names += [f"c{index}.{key}" for key in CANDIDATE_TEXT]
            names += [f"c{index}.{cat}.score" for cat in Category]
        names += [f"w.{cat}" for cat in Category]
        return [ErrorSlot(slot_id(name), self.errors.get(name, [])) for name in names]

    def error_summary(self) -> list[str]:
        lines = list(self.non_field_errors)
        labels = {str(cat): CATEGORY_LABELS[cat] for cat in Category}
        for key, reasons in self.errors.items():
            if key.startswith("c") and "." in key:
                index, rest = key[1:].split(".", 1)
                name = (
                    self.candidates[int(index)]["name"]
                    if index.isdigit() and int(index) < len(self.candidates)
                    else ""
                ) or f"Candidate {int(index) + 1 if index.isdigit() else '?'}"
                part = labels.get(rest.removesuffix(".score"), rest)
                lines += [f"{name} · {part}: {reason}" for reason in reasons]
            elif key.startswith("w."):
                lines += [f"Weight of {labels.get(key[2:], key[2:])}: {r}" for r in reasons]
            else:
                lines += reasons
        return lines
