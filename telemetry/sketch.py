"""A mergeable latency sketch: fixed log-bucket histogram with DDSketch's mapping.

Field latency is rolled up per device x model x minute/hour and then combined into site and
fleet views. Percentiles of a union cannot be computed from percentiles of the parts, so every
rollup keeps a :class:`LatencySketch` and views merge them.

Why this shape
    * **Fixed mapping.** Every sketch with the same ``alpha`` and ``min_value`` puts a value in
      the same bucket ``i = ceil(log(x) / log(gamma))``, ``gamma = (1 + alpha) / (1 - alpha)``
      (DDSketch, Masson et al., VLDB 2019). Merging is adding bucket counts: exact,
      commutative and associative, so sixty minute sketches merged are *equal* to the sketch
      of the hour's values, and hours and sites combine in any order.
    * **Relative error.** A bucket ``(gamma^(i-1), gamma^i]`` is represented by
      ``2 * gamma^i / (gamma + 1)``, within ``alpha`` of every value in it, so a quantile is
      within ``alpha`` (1 %) of the sample value of the same rank.
    * **Zero bucket.** Values ``<= min_value`` (default 1e-3 ms) are counted together and
      reported as 0 (clamped to the minimum): their absolute error is at most ``min_value``.
      Without it a 0 ms reading would have no bucket and tiny values would spread the
      histogram over hundreds of empty buckets.
    * **Bounded size.** Values above ``MAX_VALUE`` (1e12, ~31 years in ms) are refused like
      negatives, NaN and infinities: a bogus reading could otherwise stretch the stored dense
      run to tens of thousands of empty buckets. Between 1e-3 and 1e12 there are at most
      ~1,730 buckets at alpha = 1 %.
    * **Exact sum.** The sum is kept as an integer number of ``SUM_RESOLUTION`` units (1e-6 of
      the value's unit, each value rounded once), because float sums depend on the order of
      addition and would break "merged equals the sketch of all values". The mean is off by
      at most 5e-7 of the unit.

Ranks follow DDSketch: ``quantile(q)`` returns the bucket holding the sorted element at index
``floor(q * (count - 1))``, i.e. ``numpy.quantile(values, q, method="lower")`` to within
``alpha``; results are clamped to ``[min, max]`` and ``q = 0`` / ``q = 1`` return ``min`` /
``max`` exactly.

Pure: stdlib and numpy only (no Django), so devices, tasks and tests can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MIN_VALUE", "MAX_VALUE", "SUM_RESOLUTION", "LatencySketch"]

FORMAT_VERSION = 1
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_VALUE = 1e-3
MAX_VALUE = 1e12
SUM_RESOLUTION = 1e-6
_SUM_SCALE = 1_000_000  # 1 / SUM_RESOLUTION, as an exact integer
_CHUNK = 1 << 20  # add_many works in chunks so temporaries stay ~8 MiB each
_INT64_SAFE = 2**62


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LatencySketch:
    """Counts of values per fixed log bucket, plus exact count, sum, min and max.

    Mutable (``add``, ``add_many``, ``merge``); ``merged`` builds a new one. Equality compares
    the canonical :meth:`to_dict` form.
    """

    __slots__ = (
        "_alpha",
        "_count",
        "_counts",
        "_gamma",
        "_log_gamma",
        "_max",
        "_min",
        "_min_value",
        "_offset",
        "_sum_units",
        "_zero",
    )

    def __init__(self, *, alpha: float = DEFAULT_ALPHA, min_value: float = DEFAULT_MIN_VALUE):
        if not (isinstance(alpha, float | int) and 0 < alpha < 1):
            raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
        if not (isinstance(min_value, float | int) and 0 < min_value < MAX_VALUE):
            raise ValueError(f"min_value must be in (0, {MAX_VALUE:g}), not {min_value!r}")
        self._alpha = float(alpha)
        self._min_value = float(min_value)
        self._gamma = (1 + self._alpha) / (1 - self._alpha)
        self._log_gamma = math.log(self._gamma)
        self._offset = 0  # bucket index of self._counts[0]
        self._counts = np.zeros(0, dtype=np.int64)
        self._zero = 0
        self._count = 0
        self._sum_units = 0
        self._min: float | None = None
        self._max: float | None = None

    # -- adding values ---------------------------------------------------------------------

    def add(self, value: float, count: int = 1) -> None:
        """Add ``value`` ``count`` times (same bucketing as :meth:`add_many`)."""
        if not _is_int(count) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        if not isinstance(value, float | int | np.floating | np.integer) or isinstance(value, bool):
            raise ValueError(f"value must be a number, not {value!r}")
        self._add_chunk(np.array([value], dtype=np.float64), weight=count)

    def add_many(self, values: Iterable[float] | np.ndarray) -> None:
        """Add every value of ``values`` (vectorised); all are checked before any is added."""
        array = np.asarray(values, dtype=np.float64).ravel()
        if array.size == 0:
            return
        self._check_values(array)
        for start in range(0, array.size, _CHUNK):
            self._add_chunk(array[start : start + _CHUNK], checked=True)

    def _check_values(self, array: np.ndarray) -> None:
        # NaN fails ">= 0" as well, so two passes cover negative, NaN, inf and too large.
        if not bool(np.all(array >= 0)):
            bad = array[~(array >= 0)][0]
            raise ValueError(f"latency must be a non-negative number, not {bad!r}")
        largest = float(array.max())
        if largest > MAX_VALUE:  # also catches +inf
            raise ValueError(f"latency must be finite and <= {MAX_VALUE:g}, not {largest!r}")

    def _add_chunk(self, array: np.ndarray, *, weight: int = 1, checked: bool = False) -> None:
        if not checked:
            self._check_values(array)
        low, high = float(array.min()), float(array.max())
        positive = array if low > self._min_value else array[array > self._min_value]
        zero = array.size - positive.size

        units = np.rint(array * _SUM_SCALE).astype(np.int64)  # <= 1e18 each: fits int64
        if high * _SUM_SCALE * array.size < _INT64_SAFE:
            chunk_units = int(units.sum())
        else:
            chunk_units = sum(units.tolist())  # Python ints: exact, no overflow

        if positive.size:
            indices = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64)
            first, last = int(indices.min()), int(indices.max())
            counts = np.bincount(indices - first, minlength=last - first + 1)
            self._ensure_range(first, last)
            start = first - self._offset
            self._counts[start : start + counts.size] += counts * weight

        self._zero += zero * weight
        self._count += array.size * weight
        self._sum_units += chunk_units * weight
        self._min = low if self._min is None else min(self._min, low)
        self._max = high if self._max is None else max(self._max, high)

    def _ensure_range(self, first: int, last: int) -> None:
        if self._counts.size == 0:
            self._offset = first
            self._counts = np.zeros(last - first + 1, dtype=np.int64)
            return
        current_last = self._offset + self._counts.size - 1
        if first >= self._offset and last <= current_last:
            return
        new_first, new_last = min(first, self._offset), max(last, current_last)
        grown = np.zeros(new_last - new_first + 1, dtype=np.int64)
        start = self._offset - new_first
        grown[start : start + self._counts.size] = self._counts
        self._offset, self._counts = new_first, grown

    # -- merging ---------------------------------------------------------------------------

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s counts to this sketch (exact; refuses a different mapping)."""
        if not isinstance(other, LatencySketch):
            raise TypeError(f"can only merge a LatencySketch, not {type(other).__name__}")
        if (other._alpha, other._min_value) != (self._alpha, self._min_value):
            raise ValueError(
                "cannot merge sketches with different mappings: "
                f"alpha {self._alpha} / min_value {self._min_value} vs "
                f"alpha {other._alpha} / min_value {other._min_value}"
            )
        if other._count == 0:
            return
        if other._counts.size:
            self._ensure_range(other._offset, other._offset + other._counts.size - 1)
            start = other._offset - self._offset
            self._counts[start : start + other._counts.size] += other._counts
        self._zero += other._zero
        self._count += other._count
        self._sum_units += other._sum_units
        assert other._min is not None and other._max is not None
        self._min = other._min if self._min is None else min(self._min, other._min)
        self._max = other._max if self._max is None else max(self._max, other._max)

    @classmethod
    def merged(
        cls,
        *sketches: LatencySketch,
        alpha: float | None = None,
        min_value: float | None = None,
    ) -> LatencySketch:
        """A new sketch of all ``sketches`` (empty, with the given or default mapping, if none)."""
        if sketches:
            first = sketches[0]
            alpha = first._alpha if alpha is None else alpha
            min_value = first._min_value if min_value is None else min_value
        result = cls(
            alpha=DEFAULT_ALPHA if alpha is None else alpha,
            min_value=DEFAULT_MIN_VALUE if min_value is None else min_value,
        )
        for sketch in sketches:
            result.merge(sketch)
        return result

    # -- reading ---------------------------------------------------------------------------

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def min_value(self) -> float:
        return self._min_value

    @property
    def count(self) -> int:
        return self._count

    @property
    def sum(self) -> float:
        """Sum of the values, each rounded to ``SUM_RESOLUTION``."""
        return self._sum_units / _SUM_SCALE

    @property
    def mean(self) -> float | None:
        return None if self._count == 0 else self._sum_units / _SUM_SCALE / self._count

    @property
    def min(self) -> float | None:
        return self._min

    @property
    def max(self) -> float | None:
        return self._max

    def quantile(self, q: float) -> float | None:
        """Value at rank ``floor(q * (count - 1))`` within ``alpha``; ``None`` when empty."""
        if not (isinstance(q, float | int) and 0 <= q <= 1):
            raise ValueError(f"q must be in [0, 1], not {q!r}")
        if self._count == 0:
            return None
        assert self._min is not None and self._max is not None
        if q == 0:
            return self._min
        if q == 1:
            return self._max
        rank = q * (self._count - 1)
        if rank < self._zero:
            value = 0.0
        else:
            cumulative = np.cumsum(self._counts)
            position = int(np.searchsorted(cumulative, rank - self._zero, side="right"))
            value = 2 * self._gamma ** (self._offset + position) / (self._gamma + 1)
        return min(max(value, self._min), self._max)

    # -- storage ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-able form (for a JSONField): the dense run of non-empty buckets."""
        nonzero = np.flatnonzero(self._counts)
        if nonzero.size:
            first, last = int(nonzero[0]), int(nonzero[-1])
            offset, counts = self._offset + first, self._counts[first : last + 1].tolist()
        else:
            offset, counts = 0, []
        return {
            "v": FORMAT_VERSION,
            "alpha": self._alpha,
            "min_value": self._min_value,
            "offset": offset,
            "counts": counts,
            "zero": self._zero,
            "count": self._count,
            "sum_units": self._sum_units,
            "min": self._min,
            "max": self._max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencySketch:
        """Rebuild a sketch from :meth:`to_dict`; ``ValueError`` on an unknown or bad form."""
        if not isinstance(data, dict):
            raise ValueError("a latency sketch must be a JSON object")
        if data.get("v") != FORMAT_VERSION:
            raise ValueError(f"unknown latency sketch version {data.get('v')!r}")
        expected = {"v", "alpha", "min_value", "offset", "counts", "zero", "count"}
        expected |= {"sum_units", "min", "max"}
        if set(data) != expected:
            raise ValueError(f"latency sketch keys must be {sorted(expected)}")
        sketch = cls(alpha=data["alpha"], min_value=data["min_value"])
        counts, zero, count = data["counts"], data["zero"], data["count"]
        if not (_is_int(data["offset"]) and isinstance(counts, list)):
            raise ValueError("latency sketch offset must be an integer and counts a list")
        if not all(_is_int(c) and c >= 0 for c in counts):
            raise ValueError("latency sketch counts must be non-negative integers")
        if not (_is_int(zero) and zero >= 0 and _is_int(count) and _is_int(data["sum_units"])):
            raise ValueError("latency sketch zero, count and sum_units must be integers")
        lowest = math.floor(math.log(sketch._min_value) / sketch._log_gamma)
        highest = math.ceil(math.log(MAX_VALUE) / sketch._log_gamma) + 1
        if counts and not (lowest <= data["offset"] and data["offset"] + len(counts) <= highest):
            raise ValueError("latency sketch buckets lie outside (min_value, MAX_VALUE]")
        if count != zero + sum(counts):
            raise ValueError("latency sketch count does not match its buckets")
        low, high = data["min"], data["max"]
        if count == 0:
            if low is not None or high is not None or data["sum_units"] != 0:
                raise ValueError("an empty latency sketch has no min, max or sum")
        elif not (
            isinstance(low, float | int)
            and isinstance(high, float | int)
            and 0 <= low <= high <= MAX_VALUE
            and data["sum_units"] >= 0
        ):
            raise ValueError("latency sketch min and max must satisfy 0 <= min <= max")
        sketch._offset = data["offset"]
        sketch._counts = np.array(counts, dtype=np.int64)
        sketch._zero, sketch._count, sketch._sum_units = zero, count, data["sum_units"]
        sketch._min = None if low is None else float(low)
        sketch._max = None if high is None else float(high)
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LatencySketch(alpha={self._alpha}, count={self._count}, "
            f"min={self._min}, max={self._max})"
        )
