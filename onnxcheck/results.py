"""What every validation step returns, and the JSON a report is made of.

A step is a function returning a :class:`StepResult` (name, status, duration, findings, data).
:func:`canonical_json` gives the bytes :meth:`onnxcheck.pipeline.ValidationReport.report_digest`
hashes, so the same data always gives the same digest. The status names, the step timer and the
one-line rendering of an error are shared by every step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PASSED, FAILED, WARNING, SKIPPED = "passed", "failed", "warning", "skipped"


def json_safe(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/inf → None, tuples → lists."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the same data always gives the same bytes."""
    return json.dumps(
        json_safe(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass
class StepResult:
    """One validation step. ``status`` is passed | failed | warning | skipped."""

    name: str
    status: str
    duration_ms: float
    findings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "status": self.status,
                "duration_ms": self.duration_ms,
                "findings": list(self.findings),
                "data": self.data,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(
            name=data["name"],
            status=data["status"],
            duration_ms=float(data["duration_ms"]),
            findings=list(data.get("findings", [])),
            data=dict(data.get("data", {})),
        )

    @classmethod
    def skipped(cls, name: str, reason: str) -> StepResult:
        return cls(name=name, status=SKIPPED, duration_ms=0.0, findings=[reason])


class StepTimer:
    """Milliseconds since the step started: its ``duration_ms``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0


def step_status(findings_fail: bool, findings_warn: bool = False) -> str:
    return FAILED if findings_fail else (WARNING if findings_warn else PASSED)


def first_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("…" if len(text) > limit else "")
