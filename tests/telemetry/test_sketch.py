"""LatencySketch: accuracy against numpy, exact merging, storage form and refusals.

Pure tests (no database). Accuracy is judged against ``numpy.quantile(..., method="lower")``,
the sorted element at index ``floor(q * (n - 1))``: the rank convention the sketch uses.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from telemetry.sketch import DEFAULT_ALPHA, LatencySketch

N = 1_000_000
QUANTILES = (0.5, 0.95, 0.99)


def _samples(name: str, rng: np.random.Generator) -> np.ndarray:
    """Latency-like samples in ms."""
    if name == "lognormal":
        return rng.lognormal(mean=math.log(20), sigma=0.8, size=N)
    if name == "uniform":
        return rng.uniform(1.0, 500.0, size=N)
    if name == "bimodal":  # cache hits and misses
        fast = rng.normal(5.0, 0.5, size=N * 7 // 10)
        slow = rng.normal(120.0, 15.0, size=N - fast.size)
        return np.abs(np.concatenate([fast, slow]))
    if name == "pareto":  # heavy tail, shape 1.5: infinite variance
        return 10.0 * (1.0 + rng.pareto(1.5, size=N))
    raise AssertionError(name)


def _sketch(values: np.ndarray) -> LatencySketch:
    sketch = LatencySketch()
    sketch.add_many(values)
    return sketch


@pytest.mark.parametrize("name", ["lognormal", "uniform", "bimodal", "pareto"])
def test_quantiles_within_one_percent_of_numpy(name):
    values = _samples(name, np.random.default_rng(14))
    sketch = _sketch(values)

    assert sketch.count == N
    for q in QUANTILES:
        exact = float(np.quantile(values, q, method="lower"))
        estimate = sketch.quantile(q)
        assert abs(estimate - exact) / exact < DEFAULT_ALPHA, (name, q, estimate, exact)
    assert sketch.quantile(0) == values.min()
    assert sketch.quantile(1) == values.max()
    assert sketch.min == values.min() and sketch.max == values.max()
    assert sketch.mean == pytest.approx(float(values.mean()), abs=1e-6)


def test_sixty_minutes_merged_equal_the_hour_in_any_order():
    rng = np.random.default_rng(1)
    minutes = [rng.lognormal(math.log(15), 1.0, size=int(rng.integers(0, 5000))) for _ in range(60)]
    minutes[7] = np.zeros(20)  # a minute of zero readings
    hour = _sketch(np.concatenate(minutes))

    sketches = [_sketch(values) for values in minutes]
    forward = LatencySketch.merged(*sketches)
    shuffled = [sketches[i] for i in rng.permutation(60)]
    backward = LatencySketch.merged(*reversed(sketches))

    assert forward.to_dict() == hour.to_dict()
    assert LatencySketch.merged(*shuffled).to_dict() == hour.to_dict()
    assert backward.to_dict() == hour.to_dict()
    # Associative: (a + b) + c == a + (b + c), and in-place merge agrees with merged().
    left = LatencySketch.merged(LatencySketch.merged(*sketches[:30]), *sketches[30:])
    right = LatencySketch.merged(*sketches[:30], LatencySketch.merged(*sketches[30:]))
    assert left == right == hour
    in_place = LatencySketch()
    for sketch in sketches:
        in_place.merge(sketch)
    assert in_place == hour


def test_merge_is_commutative_and_add_matches_add_many():
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(0, 2, 1000), rng.uniform(0, 3e5, 1000)
    sketch_a, sketch_b = _sketch(a), _sketch(b)
    assert LatencySketch.merged(sketch_a, sketch_b) == LatencySketch.merged(sketch_b, sketch_a)

    one_by_one = LatencySketch()
    for value in a:
        one_by_one.add(float(value))
    assert one_by_one == sketch_a

    repeated = LatencySketch()
    repeated.add(12.5, count=3)
    assert repeated == _sketch(np.array([12.5, 12.5, 12.5]))


def test_merging_does_not_change_the_inputs():
    a, b = _sketch(np.array([1.0, 2.0])), _sketch(np.array([1000.0]))
    before = a.to_dict(), b.to_dict()
    LatencySketch.merged(a, b)
    assert (a.to_dict(), b.to_dict()) == before


def test_to_dict_round_trips_through_json():
    sketch = _sketch(
        np.concatenate([np.zeros(3), 1 + np.random.default_rng(3).pareto(1.2, 10_000)])
    )
    data = json.loads(json.dumps(sketch.to_dict()))
    restored = LatencySketch.from_dict(data)

    assert restored == sketch
    assert restored.to_dict() == sketch.to_dict()
    for q in (0, 0.1, 0.5, 0.99, 1):
        assert restored.quantile(q) == sketch.quantile(q)
    assert data["v"] == 1 and data["alpha"] == 0.01 and data["zero"] == 3
    assert data["counts"][0] > 0 and data["counts"][-1] > 0  # trimmed dense run

    empty = LatencySketch.from_dict(json.loads(json.dumps(LatencySketch().to_dict())))
    assert empty == LatencySketch() and empty.quantile(0.5) is None


@pytest.mark.parametrize("bad", [-1.0, -1e-9, math.nan, math.inf, -math.inf, 1e13])
def test_add_refuses_negative_nan_infinite_and_absurd(bad):
    sketch = LatencySketch()
    with pytest.raises(ValueError):
        sketch.add(bad)
    with pytest.raises(ValueError):
        sketch.add_many([1.0, 2.0, bad])
    assert sketch.count == 0 and sketch == LatencySketch()  # nothing half-added


def test_add_refuses_bad_counts_and_non_numbers():
    sketch = LatencySketch()
    for count in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            sketch.add(1.0, count=count)
    for value in ("1", None, True):
        with pytest.raises(ValueError):
            sketch.add(value)
    assert sketch.count == 0


def test_merge_refuses_a_different_mapping():
    coarse = LatencySketch(alpha=0.02)
    coarse.add(5.0)
    with pytest.raises(ValueError, match="different mappings"):
        LatencySketch().merge(coarse)
    with pytest.raises(ValueError, match="different mappings"):
        LatencySketch.merged(_sketch(np.array([1.0])), coarse)
    with pytest.raises(ValueError, match="different mappings"):
        LatencySketch().merge(LatencySketch(min_value=1e-6))
    with pytest.raises(TypeError):
        LatencySketch().merge({"v": 1})  # type: ignore[arg-type]


def test_from_dict_refuses_unknown_versions_and_bad_forms():
    good = _sketch(np.array([0.0, 1.0, 10.0])).to_dict()
    assert LatencySketch.from_dict(dict(good)) == LatencySketch.from_dict(good)
    bad_forms = [
        {**good, "v": 2},
        {k: v for k, v in good.items() if k != "v"},
        {**good, "alpha": 1.5},
        {**good, "counts": [1, -1]},
        {**good, "counts": "1,2"},
        {**good, "count": good["count"] + 1},
        {**good, "min": None},
        {**good, "min": 20.0},  # above max
        {**good, "extra": 1},
        {**good, "offset": 10**6},  # beyond MAX_VALUE: would overflow gamma ** i
        {**good, "offset": -(10**6)},
        {k: v for k, v in good.items() if k != "sum_units"},
        [good],
    ]
    for data in bad_forms:
        with pytest.raises(ValueError):
            LatencySketch.from_dict(data)  # type: ignore[arg-type]


def test_empty_sketch():
    sketch = LatencySketch()
    assert sketch.count == 0
    assert sketch.quantile(0.5) is None and sketch.quantile(0) is None
    assert sketch.mean is None and sketch.min is None and sketch.max is None
    sketch.add_many([])
    assert sketch == LatencySketch()
    with pytest.raises(ValueError):
        sketch.quantile(1.5)


def test_single_value_is_exact_at_every_quantile():
    sketch = LatencySketch()
    sketch.add(42.123)
    for q in (0, 0.01, 0.5, 0.99, 1):
        assert sketch.quantile(q) == 42.123
    assert sketch.count == 1 and sketch.mean == 42.123


def test_zeros_and_tiny_values_use_the_zero_bucket():
    sketch = _sketch(np.array([0.0, 0.0, 0.0005, 0.001, 50.0]))
    data = sketch.to_dict()
    assert data["zero"] == 4  # <= min_value (1e-3)
    assert sum(data["counts"]) == 1
    assert sketch.quantile(0.5) == 0.0  # rank 2: 0.0005, reported as 0 (error <= min_value)
    assert sketch.quantile(0.99) == 0.0  # rank 3.96: the fourth value, 0.001
    assert sketch.quantile(1) == 50.0
    assert _sketch(np.array([0.0, 50.0])).quantile(0.5) == 0.0
    assert _sketch(np.array([0.0, 50.0, 50.0])).quantile(0.5) == pytest.approx(50.0, rel=0.01)

    only_zeros = _sketch(np.zeros(10))
    assert only_zeros.quantile(0.5) == 0.0 and only_zeros.quantile(1) == 0.0
    assert only_zeros.to_dict()["counts"] == []
