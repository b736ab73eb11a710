"""A model's I/O contract: what its outputs mean and how its inputs must be prepared.

A small, signed model card. The gateway reads it to turn a score tensor into a label, the
server checks it against the ONNX graph before signing. No Django here, and no ONNX either:
the graph is described by the plain output descriptions that ``onnxcheck`` produces
(``{"name", "dtype", "shape"}``), so this module stays importable on a gateway.

Parsing is strict like the manifest's: ``from_dict`` refuses missing and unknown members with
a ValueError that names the member, because a contract is signed and a reader that silently
dropped a member it does not know could mis-read the scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "MAX_INTENDED_USE_CHARS",
    "MAX_LABELS",
    "MAX_LABEL_CHARS",
    "ColorOrder",
    "IoContract",
    "Layout",
    "Preprocessing",
    "ScoreKind",
    "check_contract_against_outputs",
    "resolve_score_output",
]

Layout = Literal["NCHW", "NHWC", "NC", "none"]
ColorOrder = Literal["RGB", "BGR", "none"]
ScoreKind = Literal["probabilities", "logits"]

MAX_LABELS = 100_000
MAX_LABEL_CHARS = 200
MAX_INTENDED_USE_CHARS = 2000

_LAYOUTS: tuple[str, ...] = get_args(Layout)
_COLOR_ORDERS: tuple[str, ...] = get_args(ColorOrder)
_SCORE_KINDS: tuple[str, ...] = get_args(ScoreKind)


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """How raw input becomes the tensor the model expects: ``(x * scale - mean) / std``.

    ``mean`` and ``std`` are per channel (empty when the model normalises nothing beyond
    ``scale``); ``layout`` and ``color_order`` say how an image is laid out, ``"none"`` for
    inputs that are not images.
    """

    layout: Layout
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    color_order: ColorOrder

    def __post_init__(self) -> None:
        _require_choice(self.layout, "preprocessing.layout", _LAYOUTS)
        _require_choice(self.color_order, "preprocessing.color_order", _COLOR_ORDERS)
        scale = _require_finite(self.scale, "preprocessing.scale")
        if scale <= 0:
            raise ValueError(f"preprocessing.scale must be > 0, got {self.scale!r}")
        mean = _require_numbers(self.mean, "preprocessing.mean")
        std = _require_numbers(self.std, "preprocessing.std")
        if len(mean) != len(std):
            raise ValueError(
                f"preprocessing.mean has {len(mean)} values and preprocessing.std has"
                f" {len(std)}: give both per channel, or neither"
            )
        for index, value in enumerate(std):
            if value <= 0:
                raise ValueError(f"preprocessing.std[{index}] must be > 0, got {value!r}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"layout", "scale", "mean", "std", "color_order"}``."""
        return {
            "layout": self.layout,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "color_order": self.color_order,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "preprocessing")
        _require_members(data, set(_PREPROCESSING_MEMBERS), "preprocessing")
        for name in ("mean", "std"):
            if not isinstance(data[name], list):
                raise ValueError(f"preprocessing.{name} must be a list of numbers")
        return cls(
            layout=data["layout"],
            scale=data["scale"],
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            color_order=data["color_order"],
        )


_PREPROCESSING_MEMBERS = ("layout", "scale", "mean", "std", "color_order")


@dataclass(frozen=True, kw_only=True)
class IoContract:
    """What the model's score output means: one label per class, in class-index order.

    ``score_output`` names the graph output holding the scores; ``None`` means "the one
    floating-point output of rank 1 or 2", which `resolve_score_output` finds (and refuses
    to guess when there are several).
    """

    labels: tuple[str, ...]
    score_output: str | None
    scores: ScoreKind
    preprocessing: Preprocessing
    intended_use: str

    def __post_init__(self) -> None:
        if not isinstance(self.labels, list | tuple) or not self.labels:
            raise ValueError("labels must list at least one class label")
        labels = tuple(self.labels)
        if len(labels) > MAX_LABELS:
            raise ValueError(f"labels has {len(labels)} entries, at most {MAX_LABELS} allowed")
        seen: set[str] = set()
        for index, label in enumerate(labels):
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"labels[{index}] must be a non-empty string")
            if len(label) > MAX_LABEL_CHARS:
                raise ValueError(
                    f"labels[{index}] is {len(label)} characters, at most {MAX_LABEL_CHARS}"
                )
            if label in seen:
                raise ValueError(f"labels[{index}] repeats the label {label[:40]!r}")
            seen.add(label)
        object.__setattr__(self, "labels", labels)
        if self.score_output is not None and (
            not isinstance(self.score_output, str) or not self.score_output.strip()
        ):
            raise ValueError("score_output must be a non-empty string or null")
        _require_choice(self.scores, "scores", _SCORE_KINDS)
        if not isinstance(self.preprocessing, Preprocessing):
            raise ValueError("preprocessing must be a Preprocessing")
        if not isinstance(self.intended_use, str):
            raise ValueError("intended_use must be a string")
        if len(self.intended_use) > MAX_INTENDED_USE_CHARS:
            raise ValueError(
                f"intended_use is {len(self.intended_use)} characters, at most"
                f" {MAX_INTENDED_USE_CHARS}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form carried as ``opshero_manifest.io_contract``."""
        return {
            "labels": list(self.labels),
            "score_output": self.score_output,
            "scores": self.scores,
            "preprocessing": self.preprocessing.to_dict(),
            "intended_use": self.intended_use,
        }

    @classmethod
    def from_dict(cls, data: Any) -> IoContract:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "io_contract")
        _require_members(data, set(_CONTRACT_MEMBERS), "io_contract")
        if not isinstance(data["labels"], list):
            raise ValueError("labels must be a list of strings")
        return cls(
            labels=tuple(data["labels"]),
            score_output=data["score_output"],
            scores=data["scores"],
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            intended_use=data["intended_use"],
        )


_CONTRACT_MEMBERS = ("labels", "score_output", "scores", "preprocessing", "intended_use")


def resolve_score_output(contract: IoContract, outputs: Sequence[Mapping[str, Any]]) -> str | None:
    """Name the graph output that holds the scores, or None when it cannot be decided.

    An explicit ``score_output`` is returned only if the graph has it. Otherwise the single
    floating-point output of rank 2 (``[batch, classes]``) is chosen, or failing that the
    single one of rank 1; with none or several candidates the answer is None and
    `check_contract_against_outputs` says why.
    """
    return _resolve(contract, outputs)[0]


def check_contract_against_outputs(
    contract: IoContract, outputs: Sequence[Mapping[str, Any]]
) -> list[str]:
    """List what makes the contract disagree with the model's outputs (empty: consistent).

    ``outputs`` are ``{"name", "dtype", "shape"}`` mappings as ``onnxcheck`` describes a
    graph's outputs; a dimension is an int (static, ``-1`` counts as dynamic), a string or
    None (dynamic). A static class dimension must equal the number of labels; a dynamic one
    cannot be checked here and is accepted.
    """
    name, problem = _resolve(contract, outputs)
    if problem is not None:
        return [problem]
    assert name is not None
    output = next(item for item in outputs if item.get("name") == name)
    problems: list[str] = []
    dtype = output.get("dtype")
    if dtype is not None and not _is_float(dtype):
        problems.append(
            f"output {name!r} is {dtype}, but scores ({contract.scores}) must be floating point"
        )
    shape = output.get("shape")
    if shape:
        classes = shape[-1]
        if _is_static(classes) and classes != len(contract.labels):
            problems.append(
                f"{len(contract.labels)} labels but output {name!r} has {classes} classes"
            )
    return problems


def _resolve(
    contract: IoContract, outputs: Sequence[Mapping[str, Any]]
) -> tuple[str | None, str | None]:
    names = [item.get("name") for item in outputs]
    if contract.score_output is not None:
        if contract.score_output in names:
            return contract.score_output, None
        known = ", ".join(repr(name) for name in names) or "none"
        return None, (
            f"score_output {contract.score_output!r} is not an output of the model"
            f" (its outputs: {known})"
        )
    for rank in (2, 1):
        candidates = [
            item.get("name")
            for item in outputs
            if _is_float(item.get("dtype"))
            and isinstance(item.get("shape"), list | tuple)
            and len(item["shape"]) == rank
        ]
        if len(candidates) == 1:
            return candidates[0], None
        if len(candidates) > 1:
            listed = ", ".join(repr(name) for name in candidates)
            return None, (
                f"the model has several floating-point outputs of rank {rank} ({listed}):"
                " name the one holding the scores in score_output"
            )
    return None, (
        "the model has no floating-point output of rank 1 or 2 to read scores from:"
        " name the score output in score_output"
    )


def _is_float(dtype: Any) -> bool:
    return isinstance(dtype, str) and dtype.startswith(("float", "bfloat"))


def _is_static(dim: Any) -> bool:
    # Real models spell a dynamic axis as a name, an empty name (None here) or -1.
    return isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0


def _require_object(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")


def _require_members(data: dict[str, Any], expected: set[str], where: str) -> None:
    missing = expected - set(data)
    unknown = set(data) - expected
    if missing:
        raise ValueError(f"{where} is missing {sorted(missing)}")
    if unknown:
        raise ValueError(f"{where} has unknown members {sorted(unknown)}")


def _require_choice(value: Any, what: str, choices: tuple[str, ...]) -> None:
    if value not in choices or not isinstance(value, str):
        raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")


def _require_finite(value: Any, what: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _require_numbers(values: Any, what: str) -> tuple[float, ...]:
    if not isinstance(values, list | tuple):
        raise ValueError(f"{what} must be a list of numbers")
    return tuple(_require_finite(value, f"{what}[{i}]") for i, value in enumerate(values))
