"""Wave planning and rollout settings: pure computation, no Django.

The planner takes the eligible devices (each with its site) and a wave plan, and answers which
device goes in which wave:

- the canary wave holds the devices at the named canary sites;
- later waves take cumulative shares of the *remaining* devices (10 % → 50 % → 100 %);
- membership is random but reproducible: a ``random.Random(seed)`` shuffle, so the same seed
  and the same devices give the same waves, and a re-plan after a device is added moves few;
- wherever a site has more than one eligible device, one of them (chosen by the same seeded
  generator) stays on the known-good version until the last wave, canary sites included, so
  every site keeps a working baseline to compare against and to fall back on.

Runtime support: a device's reported runtime must implement the model's ``ai.onnx`` opset.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .analysis import Thresholds

# ONNX Runtime release → highest ai.onnx opset it implements (onnxruntime.ai, "ONNX Runtime
# compatibility", version matrix). A release newer than the table is assumed to implement at
# least the newest opset listed (ONNX Runtime never drops opsets).
ORT_MAX_OPSET: dict[tuple[int, int], int] = {
    (1, 6): 13,
    (1, 7): 13,
    (1, 8): 14,
    (1, 9): 15,
    (1, 10): 15,
    (1, 11): 16,
    (1, 12): 17,
    (1, 13): 17,
    (1, 14): 18,
    (1, 15): 19,
    (1, 16): 19,
    (1, 17): 20,
    (1, 18): 21,
    (1, 19): 21,
    (1, 20): 21,
}
_NEWEST = max(ORT_MAX_OPSET)
_ORT = re.compile(r"onnxruntime[\s/-]*v?(\d+)\.(\d+)", re.IGNORECASE)


def runtime_refusal(*, runtime: str, opset: int | None) -> str | None:
    """Why a device reporting ``runtime`` cannot run a model needing ``opset``; None when it can.

    ``runtime`` is the device's own report ("onnxruntime 1.17.3"); ``opset`` the model's
    ai.onnx opset import (None when the model declares none: nothing to check)."""
    if opset is None:
        return None
    text = (runtime or "").strip()
    if not text:
        return "reports no runtime version, so opset support cannot be checked"
    match = _ORT.search(text)
    if match is None:
        return f"runtime '{text[:40]}' is not onnxruntime; opset {opset} support is unknown"
    release = (int(match.group(1)), int(match.group(2)))
    if release > _NEWEST:
        # Newer than the table: it implements at least the newest opset listed, and for a model
        # needing more the validation on the device's hardware target is the authority.
        return None
    known = [key for key in ORT_MAX_OPSET if key <= release]
    if not known:
        return f"onnxruntime {release[0]}.{release[1]} predates opset tables (needs {opset})"
    supported = ORT_MAX_OPSET[max(known)]
    if opset > supported:
        return (
            f"onnxruntime {release[0]}.{release[1]} implements opset {supported}; "
            f"the model needs {opset}"
        )
    return None


@dataclass(frozen=True)
class WaveSpec:
    """One wave as planned: its name, cumulative share of the non-canary devices (None for
    the canary) and its thresholds."""

    name: str
    share_percent: float | None
    soak_minutes: int = 30
    success_threshold: float = 0.95
    error_threshold: float = 0.05
    device_deadline_minutes: int = 60

    def __post_init__(self) -> None:
        if self.share_percent is not None and not 0 < self.share_percent <= 100:
            raise ValueError(f"{self.name}: share must be above 0 and at most 100 %.")
        if not 0 < self.success_threshold <= 1:
            raise ValueError(f"{self.name}: success threshold must be in (0, 1].")
        if not 0 < self.error_threshold <= 1:
            raise ValueError(f"{self.name}: error threshold must be in (0, 1].")
        if self.soak_minutes < 0 or self.soak_minutes > 7 * 24 * 60:
            raise ValueError(f"{self.name}: soak must be 0 to 10,080 minutes.")
        if not 1 <= self.device_deadline_minutes <= 7 * 24 * 60:
            raise ValueError(f"{self.name}: device deadline must be 1 to 10,080 minutes.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_waves() -> list[WaveSpec]:
    """Canary → 10 % → 50 % → 100 % of the rest (the issue's default plan)."""
    return [
        WaveSpec(name="Canary", share_percent=None, soak_minutes=30),
        WaveSpec(name="10 %", share_percent=10.0, soak_minutes=20),
        WaveSpec(name="50 %", share_percent=50.0, soak_minutes=20),
        WaveSpec(name="100 %", share_percent=100.0, soak_minutes=0),
    ]


def check_wave_plan(waves: Sequence[WaveSpec]) -> None:
    """A plan has at least one wave, a canary only first, shares that grow and end at 100 %."""
    if not waves:
        raise ValueError("A rollout needs at least one wave.")
    shares = [wave.share_percent for wave in waves]
    if any(share is None for share in shares[1:]):
        raise ValueError("Only the first wave can be the canary.")
    numeric = [share for share in shares if share is not None]
    if numeric and numeric != sorted(numeric):
        raise ValueError("Wave shares are cumulative and must grow (e.g. 10, 50, 100).")
    if len(set(numeric)) != len(numeric):
        raise ValueError("Two waves have the same share.")
    if numeric and numeric[-1] != 100:
        raise ValueError("The last wave must reach 100 % of the devices.")


@dataclass(frozen=True)
class PlannedDevice:
    id: int
    site_id: int


def plan_waves(
    *,
    devices: Iterable[PlannedDevice],
    canary_site_ids: Iterable[int],
    waves: Sequence[WaveSpec],
    seed: int,
) -> list[list[int]]:
    """Device ids per wave, in wave order (see the module docstring for the rules)."""
    check_wave_plan(waves)
    rng = random.Random(seed)  # noqa: S311 - reproducible wave membership, not a secret
    canary_sites = set(canary_site_ids)
    ordered = sorted(devices, key=lambda device: device.id)
    by_site: dict[int, list[int]] = {}
    for device in ordered:
        by_site.setdefault(device.site_id, []).append(device.id)
    keepers: set[int] = set()
    for site_id in sorted(by_site):
        members = by_site[site_id]
        if len(members) > 1:
            keepers.add(rng.choice(members))
    has_canary = waves[0].share_percent is None
    canary = [
        device.id
        for device in ordered
        if has_canary and device.site_id in canary_sites and device.id not in keepers
    ]
    in_canary = set(canary)
    rest = [device.id for device in ordered if device.id not in in_canary]
    movable = [device_id for device_id in rest if device_id not in keepers]
    rng.shuffle(movable)
    held = sorted(keepers - in_canary)
    plan: list[list[int]] = []
    taken = 0
    total = len(rest)
    for index, wave in enumerate(waves):
        if wave.share_percent is None:
            plan.append(canary)
            continue
        if index == len(waves) - 1:
            plan.append(movable[taken:] + held)
            taken = len(movable)
            continue
        target = min(len(movable), math.ceil(total * wave.share_percent / 100))
        plan.append(movable[taken:target] if target > taken else [])
        taken = max(taken, target)
    return plan


@dataclass(frozen=True)
class AnalysisSettings:
    """How a rollout judges its waves: the canary thresholds, how long an installed device
    must serve before it counts as healthy, and whether a failed analysis rolls the wave back."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    device_soak_minutes: int = 5
    auto_rollback: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.device_soak_minutes <= 24 * 60:
            raise ValueError("Device soak must be 0 to 1,440 minutes.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.to_dict(),
            "device_soak_minutes": self.device_soak_minutes,
            "auto_rollback": self.auto_rollback,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AnalysisSettings:
        data = dict(data or {})
        return cls(
            thresholds=Thresholds.from_dict(data.get("thresholds") or {}),
            device_soak_minutes=int(data.get("device_soak_minutes", 5)),
            auto_rollback=bool(data.get("auto_rollback", True)),
        )
