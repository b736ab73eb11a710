"""What the calculator reports: headline figures, the side-by-side table, CSV and comparisons.

Plain Python on top of ``roi.engine`` (no Django), so the HTML pages, the API, the CSV export
and the cached summary of a saved scenario all show the same numbers, formatted one way.
Money is in the organisation's currency (its ISO 4217 code is shown beside every figure);
nothing here converts currencies.
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
from roi.rules import RULES_BY_ID, Effect, Placement
from roi.vocabulary import PLACEMENT_LABELS

SCENARIO_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("sites", "Active sites", ""),
    ("devices_per_site", "Devices per site", ""),
    ("gateways_per_site", "Gateways per site (near-edge)", ""),
    ("annual_discount_rate", "Discount rate per year", "share"),
    ("horizon_months", "Horizon", "months"),
    ("residual_value", "Hardware value at the horizon", ""),
    ("build_months", "Build before anything is live", "months"),
    ("pilot_sites", "Pilot sites", ""),
    ("pilot_months", "Pilot length", "months"),
    ("rollout_sites_per_month", "Roll-out pace after the pilot", "sites a month"),
    ("hybrid_on_device_share", "Hybrid: share of events on-device", "share"),
    ("hybrid_near_edge_share", "Hybrid: share of events near-edge", "share"),
    ("hybrid_cloud_share", "Hybrid: share of events in the cloud", "share"),
    ("allow_worse_than_today", "With-AI figures may be worse than today", ""),
)


# --- Formatting -------------------------------------------------------------------------------


def current_currency() -> str:
    """The ISO 4217 code of the organisation being served ("" outside a request).

    Imported on use: ``opshero`` brings Django in, and this module must import without it.
    """
    from opshero.money import current_currency as current

    return current()


def format_money(value: float | None, *, signed: bool = False, currency: str | None = None) -> str:
    """1234567.8 -> "EUR 1,234,568"; compact but exact enough for a business case.

    The code is the organisation's (``opshero.money.current_currency``) unless ``currency``
    is given; outside a request there is none and the bare figure is returned.
    """
    if value is None or not math.isfinite(value):
        return "—"
    code = current_currency() if currency is None else currency
    prefix = f"{code}\u00a0" if code else ""
    if abs(value) < 0.5:
        return f"{prefix}0"  # never "-0" for a rounding residue
    sign = "+" if signed and value > 0 else ""
    if value < 0:
        return f"{prefix}\u2212{abs(value):,.0f}"
    return f"{prefix}{sign}{value:,.0f}"


def format_money_range(low: float | None, high: float | None) -> str:
    """The P10-P90 range of a money figure: "EUR 1,148 to 1,786" with an en dash."""
    if low is None or high is None:
        return "—"
    return f"{format_money(low)} \u2013 {format_money(high, currency='')}"


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
            "cost_per_site_month_p10": spread.cost_per_site_month.p10,
            "cost_per_site_month_p90": spread.cost_per_site_month.p90,
            "cost_per_device_month_p10": spread.cost_per_device_month.p10,
            "cost_per_device_month_p90": spread.cost_per_device_month.p90,
            "payback_month_p10": spread.payback_month.p10,
            "payback_month_p50": spread.payback_month.p50,
            "payback_month_p90": spread.payback_month.p90,
            "probability_payback": spread.probability_payback,
            "residual_value": econ.residual_value,
            "tiers": list(econ.tiers),
        }
    bars = analysis.tornado.bars
    top = bars[0] if bars else None
    return {
        "best_placement": str(det.best_placement),
        "horizon_months": det.horizon_months,
        "annual_discount_rate": det.annual_discount_rate,
        "draws": analysis.monte_carlo.draws,
        "currency": current_currency(),
        "cohorts": [cohort.to_dict() for cohort in det.cohorts],
        "residual_value": str(det.residual_value),
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


def ruled_out_placements(result: dict[str, Any] | None) -> dict[str, str]:
    """Placements an assessment's rules ruled out, each with the rule and what triggered it.

    Pure cloud is ruled out when a rule requires local (or partly local) inference or forbids
    sending raw inputs to the cloud; on-device when a rule excludes it.
    """
    out: dict[str, str] = {}
    for finding in (result or {}).get("findings", []):
        rule = RULES_BY_ID.get(finding.get("rule_id", ""))
        if rule is None or finding.get("overridden_by"):
            continue
        targets = {
            Effect.REQUIRE_LOCAL: Placement.CLOUD,
            Effect.REQUIRE_PARTIAL_LOCAL: Placement.CLOUD,
            Effect.FORBID_CLOUD_INFERENCE: Placement.CLOUD,
            Effect.EXCLUDE_ON_DEVICE: Placement.ON_DEVICE,
        }
        target = targets.get(rule.effect)
        if target is None or str(target) in out:
            continue
        observed = finding.get("observed") or ""
        reason = finding.get("title") or rule.title
        out[str(target)] = f"{reason}" + (f" ({observed})" if observed else "")
    return out


def placement_order(first: str | None = None) -> list[str]:
    """Placements for display: the assessment's recommendation first, then the usual order."""
    order = [str(p) for p in PLACEMENTS]
    if first in order:
        order.remove(first)
        order.insert(0, first)
    return order


def kpi_rows(
    summary: dict[str, Any],
    *,
    first: str | None = None,
    ruled_out: dict[str, str] | None = None,
) -> list[KpiRow]:
    """The side-by-side table, one row per figure, one cell per placement; the best is marked.

    Built from :func:`scenario_summary` so the live page and a cached summary read the same.
    ``first`` (the assessment's placement) comes first; placements in ``ruled_out`` are never
    marked best.
    """
    horizon = summary["horizon_months"]
    excluded = set(ruled_out or {})
    places = {
        placement: summary["placements"][placement]
        for placement in placement_order(first)
        if placement in summary["placements"]
    }
    years = horizon / 12
    span = f"{years:g}-year" if float(years).is_integer() else f"{horizon}-month"
    specs: tuple[tuple[str, str, str, bool | None, str], ...] = (
        (
            "cost_per_site_month",
            "Cost per active site / month",
            f"{span} TCO over the months each site is live",
            False,
            "money",
        ),
        (
            "cost_per_site_month_p10",
            "Cost per site / month, range",
            "Monte Carlo P10 to P90",
            None,
            "money_range",
        ),
        (
            "cost_per_device_month",
            "Cost per device / month",
            "TCO per live device per month",
            False,
            "money",
        ),
        (
            "cost_per_device_month_p10",
            "Cost per device / month, range",
            "Monte Carlo P10 to P90",
            None,
            "money_range",
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
        (
            "payback_month_p10",
            "Payback, range",
            "Monte Carlo P10 to P90 (the median in between)",
            None,
            "payback_range",
        ),
        ("roi_pct", "ROI", f"{span} benefit minus TCO, over TCO", True, "percent"),
        ("npv_p10", "NPV P10", "Monte Carlo: 9 in 10 outcomes are better", True, "signed"),
        ("npv_p50", "NPV P50", "Monte Carlo median", True, "signed"),
        ("npv_p90", "NPV P90", "Monte Carlo: 1 in 10 outcomes is better", True, "signed"),
        ("probability_npv_positive", "Chance NPV > 0", "Share of Monte Carlo draws", True, "share"),
    )
    rows = []
    for key, label, help_text, higher, kind in specs:
        values = {p: places[p].get(key) for p in places}
        if higher is None:
            best = None
        elif key == "payback_month":
            ranked = {
                p: (v if v is not None else math.inf)
                for p, v in values.items()
                if p not in excluded
            }
            best = min(ranked, key=lambda p: ranked[p]) if ranked else None
            if best is not None and ranked[best] == math.inf:
                best = None
        else:
            best = _best(
                {p: v for p, v in values.items() if p not in excluded},
                higher_is_better=bool(higher),
            )
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
            elif kind == "money_range":
                high_key = key.removesuffix("_p10") + "_p90"
                text = format_money_range(value, places[placement].get(high_key))
            elif kind == "payback_range":
                text = _payback_range(places[placement], horizon)
            else:
                text = format_payback(value, horizon)
            cells.append(KpiCell(placement, value, text, best == placement))
        rows.append(KpiRow(key, label, help_text, tuple(cells)))
    return rows


def _payback_range(figures: dict[str, Any], horizon: int) -> str:
    """P10-P90 of the payback month with the median: "months 5-12, median 7"; a month beyond
    the horizon reads "36+"; none within it reads "not within 36 months"."""
    if "payback_month_p50" not in figures:
        return "—"  # a summary cached before payback had a range
    p10, p50, p90 = (figures[f"payback_month_p{q}"] for q in (10, 50, 90))
    if p10 is None:
        return f"not within {horizon} months"

    def month(value: int | None) -> str:
        return f"{horizon}+" if value is None else str(value)

    return f"months {month(p10)}\u2013{month(p90)}, median {month(p50)}"


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
    out.writerow(["currency", current_currency() or "the organisation's currency"])
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
        "cost_per_site_month_p10",
        "cost_per_site_month_p90",
        "cost_per_device_month_p10",
        "cost_per_device_month_p90",
        "payback_month_p10",
        "payback_month_p50",
        "payback_month_p90",
        "probability_payback",
        "residual_value",
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
    out.writerow(["correlation", "label", "rho", "inputs"])
    for group in inputs.correlations:
        out.writerow([group.key, group.label, group.rho, " ".join(group.names)])
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
