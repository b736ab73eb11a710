"""What the gateway knows about its own health, read from /proc and /sys where present.

CPU utilisation is the busy share of all cores since the previous reading (/proc/stat);
memory is what is in use (MemTotal - MemAvailable, /proc/meminfo); temperature the hottest
thermal zone (/sys/class/thermal/thermal_zone*/temp); throttling, an increase of any core's
thermal-throttle counter (/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count)
or a zone at or above its first passive/critical trip point. A sensor that is absent is
reported as absent (None), never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HealthProbe", "HealthReading"]


@dataclass(frozen=True)
class HealthReading:
    cpu_utilisation: float | None
    memory_mb: float
    temperature_c: float | None
    throttled: bool


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class HealthProbe:
    def __init__(self, root: str = "/") -> None:
        self.root = Path(root)
        self._cpu: tuple[int, int] | None = None
        self._throttle: int | None = None

    def _cpu_times(self) -> tuple[int, int] | None:
        text = _read(self.root / "proc/stat")
        if not text:
            return None
        parts = text.splitlines()[0].split()
        if not parts or parts[0] != "cpu":
            return None
        values = [int(v) for v in parts[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values[:8]), idle

    def _memory_mb(self) -> float:
        text = _read(self.root / "proc/meminfo") or ""
        info = {}
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            value = rest.strip().split(" ")[0]
            if value.isdigit():
                info[name] = int(value)
        if "MemTotal" in info and "MemAvailable" in info:
            return round((info["MemTotal"] - info["MemAvailable"]) / 1024.0, 1)
        return 0.0

    def _thermal(self) -> tuple[float | None, bool]:
        hottest, hot = None, False
        for zone in sorted((self.root / "sys/class/thermal").glob("thermal_zone*")):
            raw = _read(zone / "temp")
            if raw is None or not raw.strip().lstrip("-").isdigit():
                continue
            celsius = int(raw) / 1000.0
            hottest = celsius if hottest is None else max(hottest, celsius)
            for trip in zone.glob("trip_point_*_type"):
                kind = (_read(trip) or "").strip()
                if kind in ("passive", "critical"):
                    limit = _read(trip.with_name(trip.name.replace("_type", "_temp")))
                    if limit and limit.strip().isdigit() and int(raw) >= int(limit) > 0:
                        hot = True
        return hottest, hot

    def _throttle_count(self) -> int | None:
        total, found = 0, False
        for counter in (self.root / "sys/devices/system/cpu").glob(
            "cpu*/thermal_throttle/*_throttle_count"
        ):
            raw = _read(counter)
            if raw and raw.strip().isdigit():
                total += int(raw)
                found = True
        return total if found else None

    def read(self) -> HealthReading:
        cpu = None
        times = self._cpu_times()
        if times is not None and self._cpu is not None:
            total = times[0] - self._cpu[0]
            idle = times[1] - self._cpu[1]
            if total > 0:
                cpu = round(min(1.0, max(0.0, 1.0 - idle / total)), 3)
        if times is not None:
            self._cpu = times
        temperature, hot = self._thermal()
        count = self._throttle_count()
        throttled = hot or (
            count is not None and self._throttle is not None and count > self._throttle
        )
        if count is not None:
            self._throttle = count
        return HealthReading(cpu, self._memory_mb(), temperature, throttled)
