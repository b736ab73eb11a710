"""Lab sources: the model registry's validation runs, read through ``modelregistry.selectors``.

Every figure is a *lab* measurement: it names the target profile the run validated against, and
latency names the shape bucket it reports. The P95 is the worst bucket's, as the validation gate
judges it, and it was timed on the validation worker's CPU whatever the target (a documentary
target's findings are operator support only). So these figures decide only the lab metrics
(operator coverage, INT8 drop); beside the field metrics they are shown as references.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from roi.measurements import register_evidence_source
from roi.plan import MeasureContext, MeasureKey, Measurement, Provenance, register_source
from roi.scorecard import StackEvidence

#: How many of a model's most recent finished runs are searched for a figure.
RUNS_SEARCHED = 50


def report_steps(run: Any) -> dict[str, dict]:
    return {step.get("name"): step for step in (run.report or {}).get("steps", [])}


def step_data(steps: Mapping[str, dict], name: str) -> dict:
    """A finished step's data; a skipped or errored step measured nothing."""
    step = steps.get(name) or {}
    return step.get("data") or {} if step.get("status") in {"passed", "failed"} else {}


def worst_bucket(steps: Mapping[str, dict]) -> dict | None:
    """The shape bucket with the highest P95: the one the validation gate's verdict rests on."""
    buckets = [
        bucket
        for bucket in step_data(steps, "latency").get("buckets") or []
        if isinstance(bucket.get("p95_ms"), int | float)
    ]
    return max(buckets, key=lambda bucket: bucket["p95_ms"]) if buckets else None


def worker_cpu(steps: Mapping[str, dict]) -> str:
    machine = step_data(steps, "latency").get("machine") or {}
    return str(machine.get("cpu_model") or "").strip()


def target_profile(target: Any) -> str:
    return f"{target.name} (documentary profile)" if target.documentary else target.name


def _bucket_label(bucket: Mapping[str, Any], index: int) -> str:
    label = bucket.get("label")
    return str(label) if label else f"#{index + 1}"


def _validation_figure(
    context: MeasureContext,
    key: str,
    unit: str,
    extract: Callable[[dict], float | None],
    *,
    latency: bool = False,
) -> Measurement | None:
    from modelregistry.selectors import finished_runs_for_org

    model = context.get("model")
    if model is None:  # a plan measures the model it names, never whatever ran last
        return None
    runs = finished_runs_for_org(org=context["organisation"]).filter(version__model=model)
    for run in runs[:RUNS_SEARCHED]:
        steps = report_steps(run)
        try:
            value = extract(steps)
        except (KeyError, IndexError, TypeError):
            value = None
        if value is None:
            continue
        version = run.version
        bucket = detail = ""
        if latency:
            worst = worst_bucket(steps)
            buckets = step_data(steps, "latency").get("buckets") or []
            bucket = _bucket_label(worst, buckets.index(worst)) if worst else ""
            cpu = worker_cpu(steps)
            detail = "reference measurement on the validation worker's CPU" + (
                f" ({cpu}), worst of {len(buckets)} shape bucket(s)" if cpu else ""
            )
        return Measurement(
            key=key,
            value=float(value),
            unit=unit,
            source=(
                f"validation run #{run.number} of {version.model.name} {version.version} on "
                f"{run.target.name}"
            ),
            measured_at=run.finished_at,
            provenance=Provenance.LAB,
            detail=detail,
            target=target_profile(run.target),
            bucket=bucket,
        )
    return None


def _worst_p95(steps: dict) -> float | None:
    worst = worst_bucket(steps)
    return worst["p95_ms"] if worst else None


@register_source(MeasureKey.LATENCY_P95_MS, provenance=Provenance.LAB)
def validation_p95(context: MeasureContext) -> Measurement | None:
    return _validation_figure(context, MeasureKey.LATENCY_P95_MS, "ms", _worst_p95, latency=True)


@register_source(MeasureKey.OPERATOR_COVERAGE, provenance=Provenance.LAB)
def validation_operator_coverage(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.OPERATOR_COVERAGE,
        "share",
        lambda steps: step_data(steps, "compatibility")["supported_share"],
    )


@register_source(MeasureKey.ACCURACY, provenance=Provenance.LAB)
def validation_accuracy(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.ACCURACY,
        "share",
        lambda steps: step_data(steps, "calibration").get("accuracy"),
    )


@register_source(MeasureKey.INT8_ACCURACY_DROP, provenance=Provenance.LAB)
def validation_int8_drop(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.INT8_ACCURACY_DROP,
        "points",
        lambda steps: step_data(steps, "quantization_int8")["fidelity"].get("accuracy_drop_points"),
    )


@register_source(MeasureKey.ECE, provenance=Provenance.LAB)
def validation_ece(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.ECE,
        "ratio",
        lambda steps: step_data(steps, "calibration").get("ece"),
    )


# --- Stack scorecard evidence ------------------------------------------------------------------

# Execution providers as people write them in a stack's runtime or hardware description.
PROVIDER_WORDS = {
    "NNAPI": ("nnapi", "android"),
    "CoreML": ("coreml", "core ml", "apple", "ios", "ipad", "iphone"),
    "CPU": ("cpu", "x86", "arm64", "onnxruntime cpu"),
    "TensorRT": ("tensorrt", "jetson"),
    "CUDA": ("cuda",),
    "OpenVINO": ("openvino",),
    "DirectML": ("directml", "windows"),
    "QNN": ("qnn", "qualcomm", "snapdragon"),
}

# Words that say a stack runs on an accelerator: a CPU timing is no evidence of its performance.
ACCELERATOR_WORDS = (
    "npu",
    "gpu",
    "tpu",
    "dsp",
    "accelerator",
    "neural engine",
    "hailo",
    "coral",
    *(word for provider, words in PROVIDER_WORDS.items() if provider != "CPU" for word in words),
)


@register_evidence_source
def validation_evidence(organisation: Any, candidate: Mapping[str, Any]) -> StackEvidence | None:
    """Lab evidence for a stack: the latest validation run on a hardware target whose name or
    execution provider the candidate's description mentions.

    Operator coverage and the INT8 drop belong to the target profile (a documentary one
    included, and labelled so). The P95 was timed on the validation worker's CPU, so it counts as
    performance evidence only for a CPU target and a candidate that names no accelerator; for an
    NPU, GPU or Jetson stack there is no latency evidence until a field source measures one.
    """
    from modelregistry.selectors import finished_runs_for_org

    text = " ".join(
        str(candidate.get(key) or "") for key in ("name", "hardware", "runtime", "toolchain")
    ).lower()
    if not text.strip():
        return None
    for run in finished_runs_for_org(org=organisation)[:RUNS_SEARCHED]:
        target = run.target
        words = (target.name.lower(), *PROVIDER_WORDS.get(target.execution_provider, ()))
        if not any(word and word in text for word in words):
            continue
        steps = report_steps(run)
        int8 = step_data(steps, "quantization_int8").get("fidelity") or {}
        budget = (run.gates or {}).get("latency_budget_ms")
        worst = worst_bucket(steps)
        cpu = worker_cpu(steps) or "the validation worker's CPU"
        cpu_stack = (
            target.execution_provider == "CPU"
            and not target.documentary
            and not any(word in text for word in ACCELERATOR_WORDS)
        )
        p95 = worst["p95_ms"] if worst and budget and cpu_stack else None  # judged vs a budget
        measured_on = f"validation worker CPU ({cpu}) with the {target_profile(target)} profile"
        return StackEvidence(
            operator_coverage=step_data(steps, "compatibility").get("supported_share"),
            int8_accuracy_drop_points=int8.get("accuracy_drop_points"),
            p95_latency_ms=p95,
            latency_budget_ms=budget if p95 is not None else None,
            source=(
                f"validation run #{run.number} of {run.version.model.name} "
                f"{run.version.version} on {target.name}"
            ),
            provenance=Provenance.LAB,
            measured_on=measured_on,
        )
    return None
