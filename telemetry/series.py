"""What the fleet health pages show of one scope, as plain data: built by
``telemetry.selectors`` from the rollups, drawn by ``telemetry.charts``.

Pure (no Django), so the charts module can take these types without importing the selectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .drift import CONFIDENCE_BINS
from .sketch import LatencySketch


@dataclass(frozen=True)
class LatencyFigures:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None

    @classmethod
    def of(cls, sketch: LatencySketch) -> LatencyFigures:
        return cls(
            count=sketch.count,
            p50=sketch.quantile(0.5),
            p95=sketch.quantile(0.95),
            p99=sketch.quantile(0.99),
            mean=sketch.mean,
        )


LOW_CONFIDENCE = 0.5  # the default review threshold; a model's own policy may differ


def low_confidence_share(bins: list[int], threshold: float) -> float | None:
    """Share of inferences under ``threshold`` (bins of 0.05: the threshold rounds to a bin)."""
    total = sum(bins)
    if not total:
        return None
    upto = round(threshold * CONFIDENCE_BINS)
    return sum(bins[:upto]) / total


def share(part: float, other: float) -> float | None:
    """``part`` as a share of ``part + other`` (None when both are 0: nothing was measured)."""
    whole = part + other
    return None if whole <= 0 else part / whole


@dataclass(frozen=True)
class VersionSeries:
    """One model version's inference rollups of a scope, bucket by bucket, and in total."""

    model_sha256: str
    model_name: str
    model_version: str
    buckets: list[datetime]
    counts: list[int]
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]
    low_confidence_share: list[float | None]
    class_mix: dict[str, list[int]]
    total: dict[str, Any]  # merge_inference over the window
    latency: LatencyFigures
    time_to_action: LatencyFigures
    estimated_accuracy: float | None
    measured_accuracy: float | None
    baseline_bins: list[int] | None  # the validation baseline's confidence histogram

    @property
    def low_confidence_share_total(self) -> float | None:
        return low_confidence_share(self.total["confidence_bins"], LOW_CONFIDENCE)


@dataclass(frozen=True)
class HealthSeries:
    buckets: list[datetime]
    temperature_mean: list[float | None]
    temperature_max: list[float | None]
    power_mean: list[float | None]
    throttled_share: list[float | None]
    online_share: list[float | None]
    delivered: list[int]
    duplicates: list[int]
    total: dict[str, Any]
    offline_periods: list[tuple[datetime, datetime]]

    @property
    def online_share_total(self) -> float | None:
        return share(self.total["online_seconds"], self.total["offline_seconds"])


@dataclass(frozen=True)
class DriftPoint:
    kind: str
    window_start: datetime
    window_end: datetime
    evaluated: bool
    breached: bool
    value: float | None
    threshold: float | None
    statistic: str
    reason: str
    model_sha256: str
