"""Steps (d), ``quantization_int8`` and ``quantization_fp16``: a smaller variant and its cost.

Each step builds a variant file (:mod:`onnxcheck.quantize`) and compares it with the FP32 model:
size, latency over alternating runs (:data:`VARIANT_LATENCY_RULE`) and, on uploaded inputs,
fidelity (top-1 agreement, accuracy drop, SQNR). An INT8 variant that cannot be built fails its
step; FP16 is optional evidence, so an FP16 variant that cannot be built skips its step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from onnxcheck.evaluation import DEFAULT_MAX_EVAL_SAMPLES, collect_outputs, evaluation_feeds
from onnxcheck.inputs import SYNTHETIC_NOTE, RepresentativeInputs
from onnxcheck.inspection import ModelMetadata, load_checked_model, sha256_file
from onnxcheck.latency import LatencyRule, compare_latency, create_session
from onnxcheck.results import FAILED, PASSED, SKIPPED, StepResult, StepTimer
from onnxcheck.scoring import accuracy, as_probabilities, find_score_output, sqnr_db, top1

VARIANT_LATENCY_RULE = LatencyRule(
    warmup_runs=5, warmup_max_seconds=0.5, min_runs=20, min_seconds=0.5, max_seconds=2.0
)
"""Shorter rule for FP32-vs-variant comparisons (two alternating rounds each)."""


def _float_output_names(metadata: ModelMetadata) -> list[str]:
    return [
        spec.name
        for spec in metadata.outputs
        if spec.kind == "tensor" and spec.dtype and "float" in spec.dtype
    ]


def evaluate_variant(
    *,
    model_path: str | os.PathLike[str],
    variant_path: str | os.PathLike[str],
    metadata: ModelMetadata,
    inputs: RepresentativeInputs,
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    rule: LatencyRule = VARIANT_LATENCY_RULE,
    max_samples: int = DEFAULT_MAX_EVAL_SAMPLES,
) -> dict[str, Any]:
    """Fidelity (top-1 agreement, accuracy drop, SQNR) and latency change of a variant.

    Fidelity is computed only on uploaded inputs; on synthetic inputs it is ``None``.
    """
    baseline, _ = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    variant, _ = create_session(variant_path, intra_op_num_threads=intra_op_num_threads)
    first_feed = dict(inputs.bucket_feeds[0])
    stats = compare_latency(
        sessions={"fp32": baseline, "variant": variant}, feeds=first_feed, rule=rule
    )
    latency = {
        "bucket": inputs.buckets[0].label,
        "fp32_p50_ms": stats["fp32"].p50_ms,
        "variant_p50_ms": stats["variant"].p50_ms,
        "fp32_p95_ms": stats["fp32"].p95_ms,
        "variant_p95_ms": stats["variant"].p95_ms,
        "change_pct": 100.0 * (stats["variant"].p50_ms / stats["fp32"].p50_ms - 1.0),
        "runs_each": stats["fp32"].runs,
    }
    fidelity: dict[str, Any] = {
        "evaluated_samples": 0,
        "top1_agreement": None,
        "fp32_accuracy": None,
        "variant_accuracy": None,
        "accuracy_drop_points": None,
        "sqnr_db": None,
        "score_output": None,
    }
    if inputs.synthetic:
        return {"latency": latency, "fidelity": fidelity}
    feeds = list(evaluation_feeds(inputs, max_samples))
    chosen = find_score_output(outputs=metadata.outputs, preferred=score_output)
    names = [chosen.name] if chosen else _float_output_names(metadata)
    if not names:
        return {"latency": latency, "fidelity": fidelity}
    reference = collect_outputs(baseline, feeds, names)
    candidate = collect_outputs(variant, feeds, names)
    count = sum(n for _, n in feeds)
    fidelity["evaluated_samples"] = count
    fidelity["sqnr_db"] = sqnr_db(
        reference=np.concatenate([reference[n].ravel() for n in names]),
        test=np.concatenate([candidate[n].ravel() for n in names]),
    )
    if chosen is not None:
        ref_probs, _ = as_probabilities(reference[chosen.name])
        var_probs, _ = as_probabilities(candidate[chosen.name])
        ref_top, var_top = top1(ref_probs), top1(var_probs)
        fidelity["score_output"] = chosen.to_dict()
        fidelity["top1_agreement"] = float(np.mean(ref_top == var_top))
        if inputs.labels is not None:
            labels = inputs.labels[: len(ref_top)]
            fp32_acc = accuracy(predictions=ref_top, labels=labels)
            var_acc = accuracy(predictions=var_top, labels=labels)
            fidelity.update(
                fp32_accuracy=fp32_acc,
                variant_accuracy=var_acc,
                accuracy_drop_points=100.0 * (fp32_acc - var_acc),
            )
    return {"latency": latency, "fidelity": fidelity}


def _check_variant(
    *,
    step: str,
    build: Callable[[], Any],
    unavailable_status: str,
    model_path: Path,
    metadata: ModelMetadata,
    inputs: RepresentativeInputs,
    score_output: str | None,
    intra_op_num_threads: int | None,
    latency_rule: LatencyRule,
) -> StepResult:
    from onnxcheck.quantize import VariantUnavailable

    timer = StepTimer()
    try:
        variant = build()
    except VariantUnavailable as exc:
        return StepResult(step, unavailable_status, timer.ms(), [str(exc)])
    try:
        evaluation = evaluate_variant(
            model_path=model_path,
            variant_path=variant.path,
            metadata=metadata,
            inputs=inputs,
            score_output=score_output,
            intra_op_num_threads=intra_op_num_threads,
            rule=latency_rule,
        )
    except Exception as exc:  # noqa: BLE001 - a variant onnxruntime cannot run is a finding
        return StepResult(
            step,
            unavailable_status,
            timer.ms(),
            [f"the {variant.kind} variant was written but onnxruntime cannot run it: {exc}"],
            {"variant": variant.to_dict()},
        )
    baseline_size = metadata.total_bytes
    # Weights generated at load time (ConstantOfShape) are stored by the variant; compare with
    # the FP32 weights as materialised too, or the "size change" is meaningless.
    materialized = metadata.initializer_bytes + 4 * metadata.generated_constant_elements
    data = {
        "variant": {
            **variant.to_dict(),
            "derived_from_sha256": sha256_file(model_path),
            "baseline_size_bytes": baseline_size,
            "size_change_pct": 100.0 * (variant.size_bytes / baseline_size - 1.0),
            "materialized_fp32_weight_bytes": materialized,
            "size_change_vs_materialized_pct": (
                100.0 * (variant.size_bytes / materialized - 1.0) if materialized else None
            ),
        },
        **evaluation,
        "synthetic_inputs": inputs.synthetic,
    }
    fid, lat = evaluation["fidelity"], evaluation["latency"]
    findings = [
        f"{variant.kind} ({variant.method}): {variant.size_bytes:,} bytes "
        f"({data['variant']['size_change_pct']:+.1f} % vs the uploaded file), P50 "
        f"{lat['variant_p50_ms']:.2f} ms vs {lat['fp32_p50_ms']:.2f} ms "
        f"({lat['change_pct']:+.1f} %)",
        *variant.notes,
    ]
    if metadata.generated_constant_elements:
        findings.append(
            "the uploaded file generates its weights at load time (ConstantOfShape): against "
            f"the {materialized:,} bytes of materialised FP32 weights the variant is "
            f"{data['variant']['size_change_vs_materialized_pct']:+.1f} %"
        )
    if inputs.synthetic:
        findings.append(f"{SYNTHETIC_NOTE}: no agreement, accuracy or SQNR")
    else:
        findings.append(
            f"top-1 agreement {_fmt(fid['top1_agreement'], '.4f')}, accuracy drop "
            f"{_fmt(fid['accuracy_drop_points'], '.2f')} points, SQNR "
            f"{_fmt(fid['sqnr_db'], '.1f')} dB on {fid['evaluated_samples']} samples"
        )
    return StepResult(step, PASSED, timer.ms(), findings, data)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def check_int8_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
) -> StepResult:
    """Build the INT8 variant (dynamic or static QDQ, see :mod:`onnxcheck.quantize`) into
    ``output_dir`` and compare it with FP32. A model that cannot be quantized fails the step."""
    from onnxcheck.quantize import build_int8_variant

    _, metadata = load_checked_model(path=model_path)
    return _check_variant(
        step="quantization_int8",
        build=lambda: build_int8_variant(
            model_path=model_path, inputs=inputs, output_dir=output_dir
        ),
        unavailable_status=FAILED,
        model_path=Path(model_path),
        metadata=metadata,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
    )


def check_fp16_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
) -> StepResult:
    """Build the FP16 variant into ``output_dir`` and compare it with FP32. If conversion is
    impossible the step is *skipped* with the reason (FP16 is optional evidence).

    On x86 CPUs onnxruntime runs few kernels in fp16, so the latency change measured here says
    little about GPUs/NPUs; fidelity and size are what this step is for.
    """
    from onnxcheck.quantize import build_fp16_variant

    _, metadata = load_checked_model(path=model_path)
    return _check_variant(
        step="quantization_fp16",
        build=lambda: build_fp16_variant(model_path=model_path, output_dir=output_dir),
        unavailable_status=SKIPPED,
        model_path=Path(model_path),
        metadata=metadata,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
    )
