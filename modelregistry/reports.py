"""Turn a stored validation report into what the version page shows.

The report is the JSON of ``onnxcheck.pipeline.ValidationReport``; this module only selects
and labels its parts (no re-computation), so the page shows exactly what was signed.
"""

from __future__ import annotations

from typing import Any

from onnxcheck.latency import bucket_sentence, load_sentence, quantile_text
from onnxcheck.pipeline import STEP_ORDER

from . import charts
from .models import ValidationRun
from .services import variant_refusals

STEP_LABELS = {
    "integrity": "Integrity",
    "inputs": "Representative inputs",
    "compatibility": "Operator compatibility",
    "latency": "Latency",
    "quantization_int8": "INT8 variant",
    "quantization_fp16": "FP16 variant",
    "calibration": "Calibration",
    "parent_agreement": "Agreement with the parent",
    "gates": "Gates",
}


def step_progress(run: ValidationRun) -> dict[str, Any]:
    """Done/total and the per-step list for the progress bar (finished steps plus pending)."""
    done = {step["name"]: step for step in run.steps}
    steps = []
    for name in STEP_ORDER:
        step = done.get(name)
        steps.append(
            {
                "name": name,
                "label": STEP_LABELS.get(name, name),
                "status": step["status"] if step else "pending",
                "duration_ms": step.get("duration_ms") if step else None,
                "findings": step.get("findings", [])[:6] if step else [],
            }
        )
    finished = sum(1 for s in steps if s["status"] != "pending")
    total = len(steps)
    if run.is_finished:
        finished = total
    return {
        "steps": steps,
        "done": finished,
        "total": total,
        "percent": round(100 * finished / total) if total else 100,
    }


def _step(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    for step in report.get("steps", []):
        if step.get("name") == name:
            return step
    return None


def _variant_row(step: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    if step is None:
        return {"kind": kind, "status": "missing"}
    data = step.get("data") or {}
    variant = data.get("variant") or {}
    latency = data.get("latency") or {}
    fidelity = data.get("fidelity") or {}
    size_change = variant.get("size_change_pct")
    if variant.get("size_change_vs_materialized_pct") is not None and (
        variant.get("materialized_fp32_weight_bytes", 0)
        > 2 * (variant.get("baseline_size_bytes") or 0)
    ):
        # Generated weights (ConstantOfShape) make the FP32 file tiny; compare with the weights
        # it unpacks to, or "+6,000 %" would mislead.
        size_change = variant["size_change_vs_materialized_pct"]
        size_note = "vs the FP32 weights once unpacked"
    else:
        size_note = "vs FP32"
    latency_change = latency.get("change_pct")
    return {
        "kind": kind,
        "status": step.get("status"),
        "findings": step.get("findings", []),
        "size_change_label": f"{size_change:+.0f} % {size_note}" if size_change is not None else "",
        "latency_change_label": (
            f"{abs(latency_change):.0f} % {'slower' if latency_change > 0 else 'faster'} than FP32"
            if latency_change is not None
            else ""
        ),
        "method": variant.get("method"),
        "size_bytes": variant.get("size_bytes"),
        "size_change_pct": variant.get("size_change_pct"),
        "latency_change_pct": latency.get("change_pct"),
        "variant_p50_ms": latency.get("variant_p50_ms"),
        "fp32_p50_ms": latency.get("fp32_p50_ms"),
        "top1_agreement": fidelity.get("top1_agreement"),
        "accuracy_drop_points": fidelity.get("accuracy_drop_points"),
        "variant_accuracy": fidelity.get("variant_accuracy"),
        "sqnr_db": fidelity.get("sqnr_db"),
        # Available: the file is kept; registrable: the run judged its fidelity good enough
        # (otherwise registering it needs an audited reason, with the refusals shown).
        "available": step.get("status") == "passed" and bool(variant.get("stored_name")),
        "registrable": step.get("status") == "passed"
        and bool(variant.get("stored_name"))
        and not variant_refusals(variant),
        "refusals": variant_refusals(variant) if step.get("status") == "passed" else [],
        "calibration": variant.get("calibration") or "",
        "deleted": bool(variant.get("deleted_at")),
    }


def gates_summary(gates_data: dict[str, Any], verdict: str) -> dict[str, Any]:
    """What the gates header says: never "all passed" while a gate did not run."""
    gates = gates_data.get("gates") or []
    not_evaluated = gates_data.get("not_evaluated")
    if not_evaluated is None:  # reports written before the list existed
        not_evaluated = [
            {"name": g["name"], "reason": "; ".join(g.get("reasons") or [])}
            for g in gates
            if g.get("status") == "not_evaluated"
        ]
    evaluated = [g for g in gates if g.get("status") != "not_evaluated"]
    if verdict == "passed":
        text = (
            f"{len(evaluated)} passed, {len(not_evaluated)} not evaluated"
            if not_evaluated
            else "all passed"
        )
    else:
        text = verdict
    return {
        "text": text,
        "not_evaluated": not_evaluated,
        "accuracy_measured": gates_data.get("accuracy_measured"),
    }


def compatibility_view(data: dict[str, Any]) -> dict[str, Any]:
    """The compatibility step's data, with the graph every figure is about.

    Reports written before figures named their graph keep their meaning: ``graph_analysed``
    then began "after onnxruntime basic optimisation" for the optimised graph and "as uploaded"
    otherwise. ``per_graph`` lists one row per analysed graph (one per shape bucket for
    static-shape targets) for the page's table.
    """
    view = dict(data)
    if not view.get("graph") and view.get("graph_analysed"):
        analysed = str(view["graph_analysed"])
        view["graph"] = "optimised" if analysed.startswith("after") else "original"
    if not view.get("node_count_note") and view.get("uploaded_node_count") is not None:
        view["node_count_note"] = (
            f"the uploaded graph has {view['uploaded_node_count']} nodes; the analysed graph "
            f"({view.get('graph', 'unknown')}) has {view.get('node_count')}"
        )
    fixed_graphs = view.get("fixed_graphs") or []
    show = len(fixed_graphs) > 1 or any("error" in entry for entry in fixed_graphs)
    view["per_graph"] = fixed_graphs if show else []
    return view


def report_view(run: ValidationRun) -> dict[str, Any] | None:
    report = run.report
    if not report:
        return None
    latency = _step(report, "latency") or {}
    latency_data = latency.get("data") or {}
    buckets = []
    for index, bucket in enumerate(latency_data.get("buckets") or []):
        buckets.append(
            {
                **bucket,
                "chart_id": f"latency-{run.pk}-{index}",
                "chart": charts.latency_histogram(bucket),
                # "P95 0.013 ms [0.012-0.015]"; P99 only with its bound (299 runs and more).
                **{f"{q}_text": quantile_text(bucket, q) for q in ("p50", "p95", "p99")},
                "sentence": bucket_sentence(bucket) if "runs" in bucket else "",
            }
        )
    calibration = _step(report, "calibration") or {}
    calibration_data = calibration.get("data") or {}
    compatibility = _step(report, "compatibility") or {}
    gates = _step(report, "gates") or {}
    inputs = _step(report, "inputs") or {}
    return {
        "passed": report.get("passed"),
        # passed | failed | inconclusive (reports before issue 9 only have "passed").
        "verdict": report.get("verdict") or ("passed" if report.get("passed") else "failed"),
        "reasons": report.get("reasons", []),
        "label": report.get("measurement_label"),
        "environment": report.get("environment", {}),
        "synthetic": (inputs.get("data") or {}).get("synthetic", run.synthetic_inputs),
        "inputs": inputs,
        "latency": {
            **latency_data,
            "status": latency.get("status"),
            "findings": latency.get("findings", []),
            "buckets": buckets,
            "load_sentence": load_sentence(latency_data) if latency_data.get("buckets") else "",
        },
        "compatibility": {
            **compatibility_view(compatibility.get("data") or {}),
            "status": compatibility.get("status"),
            "findings": compatibility.get("findings", []),
        },
        "variants": [
            _variant_row(_step(report, "quantization_int8"), "int8"),
            _variant_row(_step(report, "quantization_fp16"), "fp16"),
        ],
        "calibration": {
            **calibration_data,
            "status": calibration.get("status"),
            "findings": calibration.get("findings", []),
            "chart_id": f"reliability-{run.pk}",
            "chart": charts.reliability_diagram(
                calibration_data.get("reliability") or [], calibration_data.get("ece")
            ),
        },
        "gates": (gates.get("data") or {}).get("gates", []),
        "gates_summary": gates_summary(
            gates.get("data") or {},
            report.get("verdict") or ("passed" if report.get("passed") else "failed"),
        ),
        "parent_agreement": _parent_agreement(_step(report, "parent_agreement")),
        "integrity": _step(report, "integrity") or {},
    }


def _parent_agreement(step: dict[str, Any] | None) -> dict[str, Any] | None:
    """A registered variant's agreement with its parent, when the run compared them."""
    if step is None or step.get("status") == "skipped":
        return None
    return {
        **(step.get("data") or {}),
        "status": step.get("status"),
        "findings": step.get("findings", []),
    }


def headline(run: ValidationRun | None) -> dict[str, Any]:
    """The few figures a list or comparison shows for a run."""
    if run is None or not run.report:
        return {}
    view = report_view(run) or {}
    buckets = view.get("latency", {}).get("buckets") or []
    int8 = next((v for v in view.get("variants", []) if v["kind"] == "int8"), {})
    return {
        "p50_ms": buckets[0].get("p50_ms") if buckets else None,
        "p95_ms": buckets[0].get("p95_ms") if buckets else None,
        "supported_share": view.get("compatibility", {}).get("supported_share"),
        "unsupported": view.get("compatibility", {}).get("unsupported_node_count"),
        "int8_drop": int8.get("accuracy_drop_points"),
        "accuracy": view.get("calibration", {}).get("accuracy"),
        "ece": view.get("calibration", {}).get("ece"),
        "passed": view.get("passed"),
    }
