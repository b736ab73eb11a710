"""What every validation step returns, and the JSON a report is made of.

A step is a function returning a :class:`StepResult` (name, status, duration, findings, data).
:func:`canonical_json` gives the bytes :meth:`onnxcheck.pipeline.ValidationReport.report_digest`
hashes, so the same data always gives the same digest. The status names, the step timer and the
one-line rendering of an error are shared by every step, and so is :func:`scrub_paths`: reports
are shown to users and signed, so they never quote the worker's absolute paths.
"""

from __future__ import annotations

import json
import math
import os
import re
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


_PATH_CHARS = r"[^\s/'\"`,;()\[\]{}<>|]"
_ABSOLUTE_PATH = re.compile(rf"(?<![\w.:/~-])(?:/{_PATH_CHARS}+)+/?")


def scrub_paths(text: str, names: Mapping[str, str] | None = None) -> str:
    """``text`` without server paths: each path in ``names`` (a file or a directory) becomes
    its display name, and any other absolute path its last component.

    onnxruntime and numpy quote absolute paths of the worker's scratch directory and of
    MEDIA_ROOT in their errors; users see the file they uploaded instead.
    """
    known: dict[str, str] = {}
    for path, shown in (names or {}).items():
        for spelling in {os.fspath(path), os.path.realpath(os.fspath(path))}:
            if spelling and spelling != "/":
                known[spelling.rstrip("/")] = shown
    for path in sorted(known, key=len, reverse=True):
        shown = known[path]
        text = text.replace(path + "/", f"{shown}/" if shown else "").replace(path, shown)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _scrub_value(value: Any, names: Mapping[str, str] | None, key: str = "") -> Any:
    if isinstance(value, str):
        # "path" values are for the caller (variant files it moves to storage, then clears).
        return value if key == "path" else scrub_paths(value, names)
    if isinstance(value, Mapping):
        return {k: _scrub_value(v, names, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(item, names) for item in value]
    return value


def scrub_step(result: StepResult, names: Mapping[str, str] | None = None) -> StepResult:
    """The step with :func:`scrub_paths` applied to its findings and every string in its data
    (except ``path`` values, which the caller consumes and never shows)."""
    return StepResult(
        name=result.name,
        status=result.status,
        duration_ms=result.duration_ms,
        findings=[scrub_paths(str(item), names) for item in result.findings],
        data=_scrub_value(result.data, names),
    )
