"""Fleet health figures: pure functions of the selectors' series."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from telemetry import charts

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class Version:
    model_sha256: str = "a" * 64
    model_name: str = "damage"
    model_version: str = "v1"
    buckets: list = field(default_factory=lambda: [T0, T0 + timedelta(hours=1)])
    counts: list = field(default_factory=lambda: [10, 30])
    p50: list = field(default_factory=lambda: [10.0, 12.0])
    p95: list = field(default_factory=lambda: [20.0, 25.0])
    p99: list = field(default_factory=lambda: [30.0, None])
    low_confidence_share: list = field(default_factory=lambda: [0.1, 0.2])
    class_mix: dict = field(default_factory=lambda: {"dent": [6, 10], "ok": [4, 20]})
    total: dict = field(default_factory=lambda: {"confidence_bins": [0] * 18 + [10, 30]})
    baseline_bins: list | None = field(default_factory=lambda: [0] * 18 + [50, 50])


@dataclass
class Point:
    kind: str
    window_end: datetime
    evaluated: bool
    breached: bool
    value: float | None
    threshold: float | None = 0.1
    statistic: str = "jensen_shannon"
    reason: str = ""
    window_start: datetime = T0


@dataclass
class Health:
    buckets: list = field(default_factory=lambda: [T0, T0 + timedelta(minutes=1)])
    temperature_mean: list = field(default_factory=lambda: [50.0, 51.0])
    temperature_max: list = field(default_factory=lambda: [55.0, 56.0])
    power_mean: list = field(default_factory=lambda: [6.0, None])
    throttled_share: list = field(default_factory=lambda: [0.0, 0.5])
    online_share: list = field(default_factory=lambda: [1.0, 0.0])
    delivered: list = field(default_factory=lambda: [40, 0])
    duplicates: list = field(default_factory=lambda: [2, 0])
    total: dict = field(
        default_factory=lambda: {"delivered": 40, "duplicates": 2, "evicted_max": 7}
    )
    offline_periods: list = field(
        default_factory=lambda: [(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))]
    )


def _says_no_data(figure) -> bool:
    return figure["data"] == [] and figure["layout"]["annotations"][0]["text"] == charts.NO_DATA


def test_every_figure_says_no_data_when_empty():
    empty = Version(buckets=[], class_mix={}, total={"confidence_bins": [0] * 20})
    assert _says_no_data(charts.latency_figure([]))
    assert _says_no_data(charts.latency_figure([empty]))
    assert _says_no_data(charts.class_mix_figure(empty))
    assert _says_no_data(charts.confidence_figure(empty))
    assert _says_no_data(charts.drift_figure([]))
    nothing = Health(buckets=[], offline_periods=[])
    assert _says_no_data(charts.temperature_power_figure(nothing))
    assert _says_no_data(charts.availability_figure(nothing))
    assert _says_no_data(charts.loss_figure(nothing))


def test_latency_has_three_percentiles_per_version_with_gaps_kept():
    figure = charts.latency_figure([Version(), Version(model_version="v2")])
    names = [trace["name"] for trace in figure["data"]]
    assert names[:3] == ["damage v1 P50", "damage v1 P95", "damage v1 P99"]
    assert len(names) == 6
    assert figure["data"][2]["y"] == [30.0, None] and figure["data"][2]["connectgaps"] is False


def test_confidence_is_compared_as_shares_and_a_missing_baseline_is_said():
    figure = charts.confidence_figure(Version())
    field_bars, baseline = figure["data"]
    assert field_bars["y"][-2:] == [0.25, 0.75] and sum(field_bars["y"]) == 1
    assert baseline["y"][-2:] == [0.5, 0.5] and "lab" in baseline["name"]
    without = charts.confidence_figure(Version(baseline_bins=None))
    assert len(without["data"]) == 1
    assert "no validation baseline" in without["layout"]["title"]["text"]


def test_class_mix_is_stacked_counts_per_class():
    figure = charts.class_mix_figure(Version())
    assert figure["layout"]["barmode"] == "stack"
    assert {t["name"]: t["y"] for t in figure["data"]} == {"dent": [6, 10], "ok": [4, 20]}


def test_drift_marks_breaches_and_leaves_unjudged_windows_as_gaps():
    points = [
        Point("class_drift", T0, True, False, 0.05),
        Point("class_drift", T0 + timedelta(minutes=10), True, True, 0.3, reason="JS 0.3"),
        Point("class_drift", T0 + timedelta(minutes=20), False, False, None, reason="too few"),
        Point("latency_budget", T0, True, False, 40.0, threshold=100.0, statistic="p95"),
    ]
    figure = charts.drift_figure(points, labels={"class_drift": "Class-mix drift"})
    by_axis: dict[str, dict[str, dict]] = {}
    for trace in figure["data"]:
        by_axis.setdefault(trace["yaxis"], {})[trace["name"]] = trace
    assert set(by_axis) == {"y", "y2"}  # one panel per signal
    drift = by_axis["y"]
    assert drift["value"]["y"] == [0.05, 0.3, None]
    assert drift["breached"]["y"] == [0.3]
    assert drift["not evaluated"]["text"] == ["not evaluated: too few"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "Class-mix drift"


def test_health_figures_shade_offline_periods_and_count_losses():
    health = Health()
    availability = charts.availability_figure(health)
    (shape,) = availability["layout"]["shapes"]
    assert shape["x0"] == (T0 + timedelta(minutes=1)).isoformat()
    assert [t["name"] for t in availability["data"]] == [
        "online share",
        "throttled share",
        "offline",
    ]
    loss = charts.loss_figure(health)
    title = loss["layout"]["title"]["text"]
    assert "40 delivered" in title and "2 duplicates" in title and "7 evicted" in title
    temperature = charts.temperature_power_figure(health)
    assert temperature["data"][2]["yaxis"] == "y2"


def test_figure_json_escapes_user_text():
    text = charts.figure_json(charts.class_mix_figure(Version(class_mix={"</script>": [1, 2]})))
    assert "</script>" not in text and "\\u003C/script\\u003E" in text
    assert json.loads(text)["data"][0]["name"] == "</script>"
