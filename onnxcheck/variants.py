"""Steps (d), ``quantization_int8`` and ``quantization_fp16``: a smaller variant and its cost.

Each step builds a variant file (:mod:`onnxcheck.quantize`) and compares it with the FP32 model:
size, latency over alternating runs (:data:`VARIANT_LATENCY_RULE`) and, on uploaded inputs,
fidelity (top-1 agreement, accuracy drop, SQNR). An INT8 variant that cannot be built fails its
step; FP16 is optional evidence, so an FP16 variant that cannot be built skips its step.

Neither step converts a model that is itself a variant (:func:`onnxcheck.quantize.
existing_variant_kind`, or declared by the caller) nor one whose weights live in external data
files: both steps are skipped with the reason (``data["not_applicable"]``).

Each variant produced carries whether it may be registered (``registrable``, ``refusals``, see
:func:`onnxcheck.gates.variant_refusals`) and where its calibration came from
(``calibration``: ``uploaded`` | ``synthetic`` | ``none``). A poor optional variant never fails
the run; the report says it is not registrable.

Step ``parent_agreement`` (:func:`check_parent_agreement`) is the other direction: the model
under validation *is* a registered variant, run side by side with its parent on the same inputs
(top-1 agreement, SQNR, largest absolute difference; with labels both accuracies and the drop).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from onnxcheck.evaluation import (
    DEFAULT_MAX_EVAL_SAMPLES,
    cast_feed,
    collect_outputs,
    evaluation_feeds,
    session_input_dtypes,
)
from onnxcheck.gates import variant_refusals
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
        "max_abs_difference": None,
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
    fidelity.update(_output_difference(reference, candidate, names))
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


def _output_difference(
    reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], names: list[str]
) -> dict[str, float | None]:
    ref = np.concatenate([reference[n].astype(np.float64).ravel() for n in names])
    test = np.concatenate([candidate[n].astype(np.float64).ravel() for n in names])
    return {
        "sqnr_db": sqnr_db(reference=ref, test=test),
        "max_abs_difference": float(np.max(np.abs(ref - test))) if ref.size else None,
    }


def _calibration_source(variant: Any, inputs: RepresentativeInputs) -> str:
    """``uploaded`` | ``synthetic`` | ``none``: what the variant's static calibration saw."""
    if "calibration" not in variant.settings:
        return "none"  # dynamic INT8 and FP16 need no calibration data
    return "synthetic" if inputs.synthetic else "uploaded"


def not_converted_reason(
    *, model: Any, metadata: ModelMetadata, variant_kind: str | None
) -> tuple[str, dict[str, Any]] | None:
    """Why the model must not be converted again, or ``None`` when it may be."""
    from onnxcheck.quantize import existing_variant_kind, not_quantized_again_reason

    if metadata.external_data_files:
        return EXTERNAL_DATA_REASON, {"not_applicable": True, "external_data": True}
    kind = variant_kind or existing_variant_kind(model)
    if kind is not None:
        return not_quantized_again_reason(kind), {"not_applicable": True, "variant_kind": kind}
    return None


EXTERNAL_DATA_REASON = (
    "weights in external data files: INT8/FP16 variants are not built for bundles"
)


def _check_variant(
    *,
    step: str,
    build: Callable[[], Any],
    unavailable_status: str,
    model_path: Path,
    variant_kind: str | None,
    inputs: RepresentativeInputs,
    score_output: str | None,
    intra_op_num_threads: int | None,
    latency_rule: LatencyRule,
    min_top1_agreement: float | None,
    min_sqnr_db: float | None,
) -> StepResult:
    from onnxcheck.quantize import VariantUnavailable

    model, metadata = load_checked_model(path=model_path)
    refused = not_converted_reason(model=model, metadata=metadata, variant_kind=variant_kind)
    if refused is not None:  # already a variant (or external weights): never converted again
        return StepResult(step, SKIPPED, 0.0, [refused[0]], refused[1])
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
            {
                "variant": {
                    **variant.to_dict(),
                    "calibration": _calibration_source(variant, inputs),
                    "registrable": False,
                    "refusals": [f"onnxruntime cannot run it: {exc}"],
                }
            },
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
    calibration = _calibration_source(variant, inputs)
    refusals = variant_refusals(
        fidelity=fid,
        measured=not inputs.synthetic and fid["evaluated_samples"] > 0,
        calibration=calibration,
        min_top1_agreement=min_top1_agreement,
        min_sqnr_db=min_sqnr_db,
    )
    data["variant"].update(calibration=calibration, registrable=not refusals, refusals=refusals)
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
    findings.append(
        f"the {variant.kind} variant may be registered"
        if not refusals
        else f"the {variant.kind} variant is not registrable: " + "; ".join(refusals)
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
    variant_kind: str | None = None,
    min_top1_agreement: float | None = None,
    min_sqnr_db: float | None = None,
) -> StepResult:
    """Build the INT8 variant (dynamic or static QDQ, see :mod:`onnxcheck.quantize`) into
    ``output_dir`` and compare it with FP32. A model that cannot be quantized fails the step; one
    that is itself a variant (``variant_kind`` or detected) or a bundle skips it. The thresholds
    decide the variant's ``registrable`` flag only."""
    from onnxcheck.quantize import build_int8_variant

    return _check_variant(
        step="quantization_int8",
        build=lambda: build_int8_variant(
            model_path=model_path, inputs=inputs, output_dir=output_dir
        ),
        unavailable_status=FAILED,
        model_path=Path(model_path),
        variant_kind=variant_kind,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
        min_top1_agreement=min_top1_agreement,
        min_sqnr_db=min_sqnr_db,
    )


def check_fp16_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
    variant_kind: str | None = None,
    min_top1_agreement: float | None = None,
    min_sqnr_db: float | None = None,
) -> StepResult:
    """Build the FP16 variant into ``output_dir`` and compare it with FP32. If conversion is
    impossible the step is *skipped* with the reason (FP16 is optional evidence).

    On x86 CPUs onnxruntime runs few kernels in fp16, so the latency change measured here says
    little about GPUs/NPUs; fidelity and size are what this step is for.
    """
    from onnxcheck.quantize import build_fp16_variant

    return _check_variant(
        step="quantization_fp16",
        build=lambda: build_fp16_variant(model_path=model_path, output_dir=output_dir),
        unavailable_status=SKIPPED,
        model_path=Path(model_path),
        variant_kind=variant_kind,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
        min_top1_agreement=min_top1_agreement,
        min_sqnr_db=min_sqnr_db,
    )


def check_parent_agreement(
    *,
    model_path: str | os.PathLike[str],
    parent_model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    variant_kind: str | None = None,
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    max_samples: int = DEFAULT_MAX_EVAL_SAMPLES,
    external_root: str | os.PathLike[str] | None = None,
) -> StepResult:
    """Step ``parent_agreement``: the variant at ``model_path`` against its parent.

    Both run on the same ``inputs`` (the parent's: uploaded when the caller has them, else
    synthetic); a feed is cast to the float type each model's input declares, so a float16-input
    variant gets the parent's float32 inputs as float16. The class-score output is the parent's
    (:func:`~onnxcheck.scoring.find_score_output`, ``score_output`` forces it); SQNR and the largest
    absolute difference cover that output, or every float output both models share when there is
    none. Labels add both accuracies and the drop in points. ``external_root`` is the variant's
    bundle folder when its weights are external files. The gates judge the figures
    (``variant_agreement``, ``variant_sqnr``); this step fails only when they cannot be measured.
    """
    timer = StepTimer()
    step = "parent_agreement"
    try:
        from onnxcheck.quantize import existing_variant_kind

        _, parent_metadata = load_checked_model(path=parent_model_path)
        bundle = {"external_root": external_root} if external_root is not None else {}
        model, metadata = load_checked_model(path=model_path, **bundle)
        variant_kind = variant_kind or existing_variant_kind(model)
        parent, _ = create_session(parent_model_path, intra_op_num_threads=intra_op_num_threads)
        variant, _ = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    except Exception as exc:  # noqa: BLE001 - a refused or unloadable parent is the finding
        return StepResult(step, FAILED, timer.ms(), [f"cannot load the parent or variant: {exc}"])
    chosen = find_score_output(outputs=parent_metadata.outputs, preferred=score_output)
    variant_outputs = {spec.name for spec in metadata.outputs}
    if chosen is not None and chosen.name not in variant_outputs:
        return StepResult(
            step,
            FAILED,
            timer.ms(),
            [f"the variant has no output {chosen.name!r} (the parent's class scores)"],
        )
    names = (
        [chosen.name]
        if chosen
        else [n for n in _float_output_names(parent_metadata) if n in variant_outputs]
    )
    data: dict[str, Any] = {
        "parent_sha256": sha256_file(parent_model_path),
        "variant_kind": variant_kind,
        "inputs_source": inputs.source,
        "synthetic_inputs": inputs.synthetic,
        "evaluated_samples": 0,
        "score_output": chosen.to_dict() if chosen else None,
        "outputs_compared": names,
        "cast_inputs": [],
        "top1_agreement": None,
        "sqnr_db": None,
        "max_abs_difference": None,
        "parent_accuracy": None,
        "variant_accuracy": None,
        "accuracy_drop_points": None,
    }
    if not names:
        return StepResult(
            step, FAILED, timer.ms(), ["parent and variant share no float output to compare"], data
        )
    feeds = list(evaluation_feeds(inputs, max_samples))
    parent_types, variant_types = session_input_dtypes(parent), session_input_dtypes(variant)
    parent_feeds, variant_feeds, cast = [], [], set()
    for feed, count in feeds:
        parent_feed, _ = cast_feed(feed, parent_types)
        variant_feed, cast_names = cast_feed(feed, variant_types)
        parent_feeds.append((parent_feed, count))
        variant_feeds.append((variant_feed, count))
        cast.update(cast_names)
    try:
        reference = collect_outputs(parent, parent_feeds, names)
        candidate = collect_outputs(variant, variant_feeds, names)
    except Exception as exc:  # noqa: BLE001 - the variant not running on the parent's inputs
        return StepResult(
            step,
            FAILED,
            timer.ms(),
            [f"the parent's inputs cannot be run through both models: {exc}"],
            data,
        )
    data["cast_inputs"] = sorted(cast)
    data["evaluated_samples"] = sum(n for _, n in feeds)
    data.update(_output_difference(reference, candidate, names))
    if chosen is not None:
        parent_top = top1(as_probabilities(reference[chosen.name])[0])
        variant_top = top1(as_probabilities(candidate[chosen.name])[0])
        data["top1_agreement"] = float(np.mean(parent_top == variant_top))
        if inputs.labels is not None:
            labels = inputs.labels[: len(parent_top)]
            parent_acc = accuracy(predictions=parent_top, labels=labels)
            variant_acc = accuracy(predictions=variant_top, labels=labels)
            data.update(
                parent_accuracy=parent_acc,
                variant_accuracy=variant_acc,
                accuracy_drop_points=100.0 * (parent_acc - variant_acc),
            )
    findings = [
        f"against the parent on {data['evaluated_samples']} {inputs.source} samples: top-1 "
        f"agreement {_fmt(data['top1_agreement'], '.4f')}, SQNR {_fmt(data['sqnr_db'], '.1f')} "
        f"dB, max abs difference {_fmt(data['max_abs_difference'], '.3g')}"
    ]
    if data["accuracy_drop_points"] is not None:
        findings.append(
            f"accuracy {data['variant_accuracy']:.4f} vs the parent's "
            f"{data['parent_accuracy']:.4f} ({data['accuracy_drop_points']:+.2f} points drop)"
        )
    if inputs.synthetic:
        findings.append(
            "synthetic inputs: agreement on random tensors, weaker evidence than the parent's "
            "uploaded inputs"
        )
    if cast:
        findings.append(
            "the parent's float inputs were cast to the variant's types for "
            + ", ".join(sorted(cast))
        )
    return StepResult(step, PASSED, timer.ms(), findings, data)
