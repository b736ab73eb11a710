"""What the calculator reports: headline figures, the side-by-side table, CSV and comparisons.

Plain Python on top of ``roi.engine`` (no Django), so the HTML pages, the API, the CSV export
and the cached summary of a saved scenario all show the same numbers, formatted one way.
Money is in the organisation's currency; nothing here converts or labels currencies.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from roi.engine import (
    INPUT_NAMES,
    PLACEMENTS,
    SECTION_LABELS,
    SPEC_BY_NAME,
    Analysis,
    RoiInputs,
    input_label,
)
from roi.rules import Placement

PLACEMENT_LABELS: dict[str, str] = {
    Placement.ON_DEVICE.value: "On-device",
    Placement.NEAR_EDGE.value: "Near-edge",
    Placement.CLOUD.value: "Cloud",
    Placement.HYBRID.value: "Hybrid",
}

SCENARIO_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("sites", "Active sites", ""),
    ("devices_per_site", "Devices per site", ""),
    ("gateways_per_site", "Gateways per site (near-edge)", ""),
    ("annual_discount_rate", "Discount rate per year", "share"),
    ("horizon_months", "Horizon", "months"),
    ("hybrid_local_tier", "Hybrid's local tier", ""),
)


# --- Formatting -------------------------------------------------------------------------------


def format_money(value: float | None, *, signed: bool = False) -> str:
    """1234567.8 -> "1,234,568"; compact but exact enough for a business case."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) < 0.5:
        return "0"  # never "-0" for a rounding residue
    sign = "+" if signed and value > 0 else ""
    if value < 0:
        return f"\u2212{abs(value):,.0f}"
    return f"{sign}{value:,.0f}"


def format_percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f} %"


def format_share(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.0f} %"


def format_number(value: float | None) -> str:
    """A plain input value as a person would type it back (no trailing zeros)."""
    if value is None or not math.isfinite(value):
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def format_payback(month: int | None, horizon: int) -> str:
    if month is None:
        return f"not within {horizon} months"
    if month == 0:
        return "immediately"
    return f"month {month}"


# --- Headline figures ---------------------------------------------------------------------------


def scenario_summary(analysis: Analysis) -> dict[str, Any]:
    """The figures a saved scenario caches for list and compare pages (JSON-ready)."""
    det = analysis.deterministic
    placements = {}
    for placement in PLACEMENTS:
        econ = det[placement]
        spread = analysis.monte_carlo[placement]
        placements[str(placement)] = {
            "npv": econ.npv,
            "tco": econ.tco,
            "net_monthly": econ.net_monthly,
            "cost_per_site_month": econ.cost_per_site_month,
            "cost_per_device_month": econ.cost_per_device_month,
            "payback_month": econ.payback_month,
            "roi_pct": econ.roi_pct,
            "npv_p10": spread.npv.p10,
            "npv_p50": spread.npv.p50,
            "npv_p90": spread.npv.p90,
            "probability_npv_positive": spread.probability_npv_positive,
        }
    bars = analysis.tornado.bars
    top = bars[0] if bars else None
    return {
        "best_placement": str(det.best_placement),
        "horizon_months": det.horizon_months,
        "annual_discount_rate": det.annual_discount_rate,
        "draws": analysis.monte_carlo.draws,
        "placements": placements,
        "top_driver": (
            {
                "name": top.name,
                "label": top.label,
                "placement": str(analysis.tornado.placement),
                "swing": top.swing,
            }
            if top
            else None
        ),
    }


@dataclass(frozen=True)
class KpiCell:
    placement: str
    value: float | int | None
    text: str
    best: bool = False


@dataclass(frozen=True)
class KpiRow:
    key: str
    label: str
    help: str
    cells: tuple[KpiCell, ...]


def _best(values: dict[str, float | int | None], *, higher_is_better: bool) -> str | None:
    known = {p: v for p, v in values.items() if v is not None and math.isfinite(v)}
    if not known:
        return None
    pick = max if higher_is_better else min
    return pick(known, key=lambda p: known[p])


def kpi_rows(summary: dict[str, Any]) -> list[KpiRow]:
    """The side-by-side table, one row per figure, one cell per placement; the best is marked.

    Built from :func:`scenario_summary` so the live page and a cached summary read the same.
    """
    horizon = summary["horizon_months"]
    places = summary["placements"]
    years = horizon / 12
    span = f"{years:g}-year" if float(years).is_integer() else f"{horizon}-month"
    specs: tuple[tuple[str, str, str, bool | None, str], ...] = (
        (
            "cost_per_site_month",
            "Cost per active site / month",
            f"{span} TCO / {horizon} months / sites",
            False,
            "money",
        ),
        (
            "cost_per_device_month",
            "Cost per device / month",
            "TCO per device per month",
            False,
            "money",
        ),
        (
            "tco",
            f"{span} TCO",
            "Hardware, replacements, integration and running costs",
            False,
            "money",
        ),
        ("net_monthly", "Net benefit / month", "Benefits minus running costs", True, "signed"),
        (
            "npv",
            "NPV",
            "Discounted monthly at the scenario's rate; > 0 beats today",
            True,
            "signed",
        ),
        (
            "payback_month",
            "Payback",
            "First month the cumulative cash flow stays at or above 0",
            False,
            "payback",
        ),
        ("roi_pct", "ROI", f"{span} benefit minus TCO, over TCO", True, "percent"),
        ("npv_p10", "NPV P10", "Monte Carlo: 9 in 10 outcomes are better", True, "signed"),
        ("npv_p50", "NPV P50", "Monte Carlo median", True, "signed"),
        ("npv_p90", "NPV P90", "Monte Carlo: 1 in 10 outcomes is better", True, "signed"),
        ("probability_npv_positive", "Chance NPV > 0", "Share of Monte Carlo draws", True, "share"),
    )
    rows = []
    for key, label, help_text, higher, kind in specs:
        values = {p: places[p][key] for p in places}
        if key == "payback_month":
            ranked = {p: (v if v is not None else math.inf) for p, v in values.items()}
            best = min(ranked, key=lambda p: ranked[p]) if ranked else None
            if best is not None and ranked[best] == math.inf:
                best = None
        else:
            best = _best(values, higher_is_better=bool(higher))
        cells = []
        for placement in places:
            value = values[placement]
            if kind == "money":
                text = format_money(value)
            elif kind == "signed":
                text = format_money(value, signed=True)
            elif kind == "percent":
                text = format_percent(value)
            elif kind == "share":
                text = format_share(value)
            else:
                text = format_payback(value, horizon)
            cells.append(KpiCell(placement, value, text, best == placement))
        rows.append(KpiRow(key, label, help_text, tuple(cells)))
    return rows


# --- CSV export -------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def scenario_csv(*, name: str, inputs: RoiInputs, analysis: Analysis) -> str:
    """Inputs with their sources, then every figure per placement: one sheet a CFO can audit."""
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["OpsHero ROI scenario", _cell(name)])
    out.writerow([])
    out.writerow(["scenario", "label", "value", "source"])
    scenario = inputs.scenario.to_dict()
    for key, label, _unit in SCENARIO_FIELDS:
        out.writerow([key, label, scenario[key], _cell(inputs.scenario.notes.get(key, ""))])
    out.writerow([])
    out.writerow(["section", "input", "label", "unit", "low", "likely", "high", "source"])
    for input_name in INPUT_NAMES:
        spec = SPEC_BY_NAME[input_name]
        estimate = inputs.estimates[input_name]
        out.writerow(
            [
                SECTION_LABELS[spec.section],
                input_name,
                input_label(input_name),
                spec.unit,
                estimate.low,
                estimate.likely,
                estimate.high,
                _cell(estimate.source),
            ]
        )
    out.writerow([])
    summary = scenario_summary(analysis)
    out.writerow(["result", *(PLACEMENT_LABELS[str(p)] for p in PLACEMENTS)])
    for key in (
        "cost_per_site_month",
        "cost_per_device_month",
        "tco",
        "net_monthly",
        "npv",
        "payback_month",
        "roi_pct",
        "npv_p10",
        "npv_p50",
        "npv_p90",
        "probability_npv_positive",
    ):
        row = [summary["placements"][str(p)][key] for p in PLACEMENTS]
        out.writerow([key, *("" if value is None else round(value, 4) for value in row)])
    det = analysis.deterministic
    for placement in PLACEMENTS:
        econ = det[placement]
        for group, values in (("benefit", econ.benefits), ("cost", econ.costs)):
            for key, value in values.items():
                out.writerow([f"{group}.{key}.{placement}", round(value, 4)])
    out.writerow([])
    out.writerow(["tornado", "placement", str(analysis.tornado.placement), "output", "npv"])
    out.writerow(["input", "label", "low", "high", "npv_at_low", "npv_at_high", "swing"])
    for bar in analysis.tornado.bars:
        out.writerow(
            [
                bar.name,
                bar.label,
                bar.low,
                bar.high,
                round(bar.output_at_low, 2),
                round(bar.output_at_high, 2),
                round(bar.swing, 2),
            ]
        )
    out.writerow([])
    out.writerow(
        [
            "monte_carlo",
            f"{analysis.monte_carlo.draws} draws",
            str(analysis.monte_carlo.distribution),
            f"seed {analysis.monte_carlo.seed}",
        ]
    )
    return buffer.getvalue()


# --- Comparing scenarios ----------------------------------------------------------------------


@dataclass(frozen=True)
class InputDifference:
    name: str
    label: str
    unit: str
    values: tuple[str, ...]  # one "low / likely / high" per scenario


def input_differences(inputs: Sequence[RoiInputs]) -> list[InputDifference]:
    """The fleet figures and estimates that are not the same in every scenario compared."""
    rows: list[InputDifference] = []
    if len(inputs) < 2:
        return rows
    for key, label, unit in SCENARIO_FIELDS:
        values = tuple(str(getattr(item.scenario, key)) for item in inputs)
        if len(set(values)) > 1:
            rows.append(InputDifference(f"scenario.{key}", label, unit, values))
    for input_name in INPUT_NAMES:
        triples = tuple(
            (
                item.estimates[input_name].low,
                item.estimates[input_name].likely,
                item.estimates[input_name].high,
            )
            for item in inputs
        )
        if len(set(triples)) > 1:
            rows.append(
                InputDifference(
                    input_name,
                    input_label(input_name),
                    SPEC_BY_NAME[input_name].unit,
                    tuple(" / ".join(format_number(v) for v in triple) for triple in triples),
                )
            )
    return rows


def placements_in(values: Iterable[str]) -> list[str]:
    """Keep only known placement names, in the engine's order."""
    wanted = set(values)
    return [str(p) for p in PLACEMENTS if str(p) in wanted]
