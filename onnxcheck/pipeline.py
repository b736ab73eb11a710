"""The validation run a Celery worker performs on an uploaded model version.

Each step is a function returning a :class:`~onnxcheck.results.StepResult` (name, status,
duration, findings, data), one module per step: :mod:`onnxcheck.integrity`, the representative
inputs (:func:`prepare_inputs`, here), :mod:`onnxcheck.compatibility`, :mod:`onnxcheck.latency`,
:mod:`onnxcheck.variants` (INT8 and FP16), :mod:`onnxcheck.calibration` and
:mod:`onnxcheck.gates`. :func:`run_validation` runs them in order, reports each through
``on_step`` (the Celery task persists progress with it) and returns a :class:`ValidationReport`
whose :meth:`~ValidationReport.report_digest` is what the signing manifest commits to.

Order and dependencies::

    integrity ─▶ inputs ─▶ compatibility ─▶ latency ─▶ parent_agreement ─▶ quantization_int8
                                          ─▶ quantization_fp16 ─▶ calibration ─▶ gates

A registered INT8/FP16 variant (``parent_model_path`` given) is validated as itself, plus
``parent_agreement``: it and its parent run on the same inputs (the parent's, which the registry
passes; a float16-input variant gets them cast to float16) and the gates compare the two. A model
that is itself a variant (declared by ``variant_kind`` or detected by
:func:`onnxcheck.quantize.existing_variant_kind`) is never quantized again, and neither is a
bundle whose weights live in external data files: their quantization steps are skipped with the
reason. A documentary target (``TargetProfile.documentary``: the worker is not that hardware)
still gets a latency measurement on the worker's CPU, labelled ``lab CPU, not this hardware``;
its latency gate is not evaluated.

Latency is measured once more, straight away, when its gate is *inconclusive* (the P95's interval
contains the budget, or the host was busy): the report keeps the second measurement and a summary
of the first (``data["remeasure"]``). If it is still inconclusive, so is the report's ``verdict``.

A digest mismatch or a refused file stops the run (evidence about another file is worthless);
every later step is then recorded as skipped with the reason. Bad representative inputs skip
the steps that need them. Otherwise every step runs, so a failing report lists *every* reason.

Never hangs: every step except ``inputs`` and ``gates`` (bounded pure Python) runs in a child
Python process (``python -m onnxcheck.worker``, see :mod:`onnxcheck.runner`) with a wall-clock
limit and an optional address-space limit (:class:`~onnxcheck.runner.StepLimits`). A step that
exceeds its limit is killed and recorded as failed with the reason; so is one whose process dies
(segfault, OOM kill). The child process also makes the latency step's peak-memory figure clean.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnxcheck.gates import (
    DOCUMENTARY_LATENCY_LABEL,
    INCONCLUSIVE,
    GateThresholds,
    evaluate_gates,
    latency_verdict,
)
from onnxcheck.inputs import (
    DEFAULT_MAX_AXIS_SIZE,
    DEFAULT_MAX_TENSOR_BYTES,
    SYNTHETIC_NOTE,
    InputsRejected,
    RepresentativeInputs,
    ShapeBucketsSpec,
    load_representative_inputs,
    synthesize_inputs,
)
from onnxcheck.inspection import DEFAULT_MAX_MODEL_BYTES, ModelMetadata
from onnxcheck.latency import (
    DEFAULT_LATENCY_RULE,
    REFERENCE_LABEL,
    LatencyRule,
    machine_description,
)
from onnxcheck.operators import TargetProfile
from onnxcheck.quantize import not_quantized_again_reason
from onnxcheck.results import FAILED, PASSED, StepResult, StepTimer, canonical_json, json_safe
from onnxcheck.runner import DEFAULT_STEP_LIMITS, StepLimits, run_isolated
from onnxcheck.variants import EXTERNAL_DATA_REASON, VARIANT_LATENCY_RULE

STEP_ORDER = (
    "integrity",
    "inputs",
    "compatibility",
    "latency",
    "parent_agreement",
    "quantization_int8",
    "quantization_fp16",
    "calibration",
    "gates",
)


# -- representative inputs ----------------------------------------------------------------------


@dataclass(frozen=True)
class InputsSpec:
    """What the user provided: an ``.npz`` (optional) and shape buckets for dynamic axes."""

    npz_path: str | os.PathLike[str] | None = None
    shape_buckets: ShapeBucketsSpec | None = None
    seed: int = 0
    # The same budgets the registry checks when the request arrives (its settings).
    max_axis_size: int = DEFAULT_MAX_AXIS_SIZE
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES


def prepare_inputs(
    *, metadata: ModelMetadata, spec: InputsSpec | RepresentativeInputs
) -> tuple[RepresentativeInputs, StepResult]:
    """Load/validate or synthesise the inputs and describe them as the ``inputs`` step.

    Raises :class:`InputsRejected`; :func:`run_validation` records it as a failed step.
    """
    timer = StepTimer()
    if isinstance(spec, RepresentativeInputs):
        inputs = spec
    elif spec.npz_path is not None:
        inputs = load_representative_inputs(
            npz_path=spec.npz_path,
            inputs=metadata.inputs,
            shape_buckets=spec.shape_buckets,
            max_axis_size=spec.max_axis_size,
            max_tensor_bytes=spec.max_tensor_bytes,
        )
    else:
        inputs = synthesize_inputs(
            inputs=metadata.inputs,
            shape_buckets=spec.shape_buckets,
            seed=spec.seed,
            max_axis_size=spec.max_axis_size,
            max_tensor_bytes=spec.max_tensor_bytes,
        )
    findings = [inputs.note, *inputs.notes]
    return inputs, StepResult("inputs", PASSED, timer.ms(), findings, inputs.describe())


def _parent_view(metadata: ModelMetadata) -> ModelMetadata:
    """The variant's metadata with float16 inputs shown as the parent's float32 ones."""
    return dataclasses.replace(
        metadata,
        inputs=tuple(
            dataclasses.replace(spec, dtype="float32") if spec.dtype == "float16" else spec
            for spec in metadata.inputs
        ),
    )


def _as_model_types(
    inputs: RepresentativeInputs, metadata: ModelMetadata
) -> tuple[RepresentativeInputs, list[str]]:
    """The inputs with each float array cast to the dtype the model declares, and the names
    cast (the parent's float32 inputs fed to a float16-input variant)."""
    wanted = {spec.name: spec.dtype for spec in metadata.inputs if spec.dtype}
    cast: set[str] = set()

    def convert(feed: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for name, array in feed.items():
            dtype = wanted.get(name)
            if dtype and array.dtype.kind == "f" and array.dtype.name != dtype:
                out[name] = array.astype(dtype)
                cast.add(name)
            else:
                out[name] = array
        return out

    converted = dataclasses.replace(
        inputs,
        bucket_feeds=tuple(convert(feed) for feed in inputs.bucket_feeds),
        samples=convert(inputs.samples) if inputs.samples is not None else None,
    )
    return (converted if cast else inputs), sorted(cast)


# -- the report and the run ---------------------------------------------------------------------


@dataclass
class ValidationReport:
    """Everything the registry stores about one validation run (JSON via :meth:`to_dict`)."""

    model_file: str
    expected_sha256: str
    target: dict[str, Any]
    metadata: dict[str, Any] | None
    inputs: dict[str, Any] | None
    steps: list[StepResult]
    passed: bool
    reasons: list[str]
    started_at: str
    finished_at: str
    environment: dict[str, Any]
    measurement_label: str = REFERENCE_LABEL
    schema_version: int = 1
    verdict: str = ""  # passed | failed | inconclusive (the gates' verdict)

    def step(self, name: str) -> StepResult:
        for item in self.steps:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def variants(self) -> list[dict[str, Any]]:
        """Variant files the caller may register as new versions (``derived_from`` this one)."""
        return [
            step.data["variant"]
            for step in self.steps
            if step.status == PASSED and "variant" in step.data
        ]

    @property
    def registrable_variants(self) -> list[dict[str, Any]]:
        """The produced variants whose fidelity met the variant gates' thresholds."""
        return [variant for variant in self.variants if variant.get("registrable")]

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "schema_version": self.schema_version,
                "model_file": self.model_file,
                "expected_sha256": self.expected_sha256,
                "target": self.target,
                "metadata": self.metadata,
                "inputs": self.inputs,
                "steps": [step.to_dict() for step in self.steps],
                "passed": self.passed,
                "verdict": self.verdict or ("passed" if self.passed else "failed"),
                "reasons": self.reasons,
                "measurement_label": self.measurement_label,
                "environment": self.environment,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
            }
        )

    def report_digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`: what signing commits to."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def run_validation(
    *,
    model_path: str | os.PathLike[str],
    expected_sha256: str,
    target: TargetProfile,
    inputs: InputsSpec | RepresentativeInputs,
    gates: GateThresholds,
    workdir: str | os.PathLike[str],
    on_step: Callable[[StepResult], None] | None = None,
    limits: StepLimits = DEFAULT_STEP_LIMITS,
    latency_rule: LatencyRule = DEFAULT_LATENCY_RULE,
    variant_latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
    intra_op_num_threads: int | None = None,
    score_output: str | None = None,
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    host_shared: bool | None = None,
    display_names: Mapping[str, str] | None = None,
    parent_model_path: str | os.PathLike[str] | None = None,
    variant_kind: str | None = None,
    bundle_root: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Run every step in order (see module docstring) and return the report.

    ``workdir`` receives the step requests/logs, the prepared inputs and the variant files
    (``workdir/variants``). ``on_step`` is called after each step, skipped ones included;
    exceptions it raises propagate (the caller's persistence failing must not be hidden).
    Bad models and bad inputs never raise: they are failed steps in the report.

    Tuning: ``limits`` (per-step time limits, address-space cap, isolation),
    ``latency_rule`` / ``variant_latency_rule`` (stopping rules of the latency step and of the
    FP32-vs-variant comparisons), ``intra_op_num_threads`` (``None`` = onnxruntime's default),
    ``score_output`` (force the class-score output), ``max_model_bytes`` (upload limit),
    ``host_shared`` (the deployment says other services share this host; recorded on the report),
    ``display_names`` (server path → the name users know, put in place of paths in findings).

    Variants: ``parent_model_path`` (the model this one was derived from: adds the
    ``parent_agreement`` evidence and its gates), ``variant_kind`` (``"int8"`` | ``"fp16"``:
    declared by the registry; such a model is never quantized again, and neither is one
    detected as a variant). ``bundle_root`` (the folder of a model with external weights:
    integrity, compatibility and parent agreement resolve its data files only inside it).
    """
    if variant_kind not in {None, "int8", "fp16"}:
        raise ValueError(f"variant_kind must be 'int8', 'fp16' or None, not {variant_kind!r}")
    started_at = _now()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = Path(model_path).resolve()
    parent = Path(parent_model_path).resolve() if parent_model_path is not None else None
    documentary = bool(getattr(target, "documentary", False))
    if parent is not None and str(parent) not in (display_names or {}):
        display_names = {**(display_names or {}), str(parent): "the parent model"}
    steps: list[StepResult] = []

    def record(result: StepResult) -> StepResult:
        steps.append(result)
        if on_step is not None:
            on_step(result)
        return result

    def skip_rest(reason: str) -> None:
        done = {step.name for step in steps}
        for name in STEP_ORDER:
            if name not in done and name != "gates":
                record(StepResult.skipped(name, reason))

    def isolated(step: str, timeout_s: float, inputs_file: Path | None, **kwargs: Any):
        return run_isolated(  # scrubs server paths: display_names are what users know
            step,
            kwargs,
            workdir=work,
            timeout_s=timeout_s,
            limits=limits,
            inputs_file=inputs_file,
            display_names=display_names,
        )

    def measure_latency() -> StepResult:
        def once() -> StepResult:
            return isolated(
                "latency",
                limits.latency_limit(latency_rule, len(prepared.buckets)),
                inputs_file,
                model_path=str(model),
                inputs=prepared,
                rule=latency_rule,
                intra_op_num_threads=intra_op_num_threads,
                host_shared=host_shared,
            )

        first = once()
        if gates.latency_budget_ms is None or documentary or first.status != PASSED:
            return first
        verdict, sentences, _ = latency_verdict(
            buckets=first.data["buckets"],
            budget_ms=gates.latency_budget_ms,
            max_other_cpu_cores=gates.max_other_cpu_cores,
            noise_margin=gates.latency_noise_margin,
        )
        if verdict != INCONCLUSIVE:
            return first
        second = once()
        if second.status != PASSED:
            return second
        second.data["remeasure"] = {
            "reason": "the first measurement's latency gate was inconclusive",
            "first": {
                "gate": sentences,
                "load_average_before": first.data.get("load_average_before"),
                "load_average_after": first.data.get("load_average_after"),
                "buckets": [
                    {
                        key: bucket.get(key)
                        for key in (
                            "label",
                            "runs",
                            "p95_ms",
                            "p95_ci_low_ms",
                            "p95_ci_high_ms",
                            "other_cpu_cores",
                            "capped",
                        )
                    }
                    for bucket in first.data["buckets"]
                ],
            },
        }
        second.findings.append(
            "Measured twice: the first measurement's latency gate was inconclusive ("
            + "; ".join(sentences)
            + ")."
        )
        second.duration_ms += first.duration_ms
        return second

    # Passed only for a bundle, so steps that predate bundles are called as they always were.
    bundle_kwargs: dict[str, Any] = {}
    if bundle_root is not None:
        bundle_kwargs["external_root"] = str(bundle_root)
    integrity = record(
        isolated(
            "integrity",
            limits.integrity_s,
            None,
            model_path=str(model),
            expected_sha256=expected_sha256,
            max_bytes=max_model_bytes,
            **bundle_kwargs,
        )
    )
    metadata_dict = integrity.data.get("metadata")
    prepared: RepresentativeInputs | None = None
    inputs_file: Path | None = None
    if integrity.data.get("fatal", True) or metadata_dict is None:
        why = integrity.findings[0] if integrity.findings else "no metadata"
        skip_rest(f"integrity failed, nothing else is evidence about this artifact: {why}")
    else:
        metadata = ModelMetadata.from_dict(metadata_dict)
        agreement_inputs: RepresentativeInputs | None = None
        try:
            if parent is not None and metadata.inputs != _parent_view(metadata).inputs:
                # The parent's float32 inputs are the reference; the variant gets them cast.
                try:
                    agreement_inputs, inputs_step = prepare_inputs(
                        metadata=_parent_view(metadata), spec=inputs
                    )
                except InputsRejected as exc:
                    if exc.code != "inputs_wrong_dtype":
                        raise
                    agreement_inputs, inputs_step = prepare_inputs(metadata=metadata, spec=inputs)
                prepared, cast = _as_model_types(agreement_inputs, metadata)
                if cast:
                    inputs_step.findings.append(
                        "the parent's float32 inputs are cast to float16 for this variant: "
                        + ", ".join(cast)
                    )
            else:
                prepared, inputs_step = prepare_inputs(metadata=metadata, spec=inputs)
                agreement_inputs = prepared
        except InputsRejected as exc:
            inputs_step = StepResult(
                "inputs", FAILED, 0.0, [f"{exc.code}: {exc.message}"], {"error": exc.to_dict()}
            )
        record(inputs_step)
        if prepared is not None:
            inputs_file = prepared.save(work / "inputs.npz")
        record(
            isolated(
                "compatibility",
                limits.compatibility_s,
                inputs_file,
                model_path=str(model),
                target=target,
                inputs=prepared,
                max_bytes=max_model_bytes,
                **bundle_kwargs,
            )
        )
        if prepared is None:
            skip_rest("representative inputs were refused")
        else:
            latency = measure_latency()
            if documentary:
                latency.data["label"] = DOCUMENTARY_LATENCY_LABEL
                latency.findings.append(
                    f"{DOCUMENTARY_LATENCY_LABEL}: measured on the validation worker's CPU; "
                    f"{target.name} is a documentary target, so its latency gate is not evaluated"
                )
            record(latency)
            if parent is None:
                reason = (
                    f"declared an {variant_kind.upper()} variant but no parent model was given: "
                    "agreement with the parent was not measured"
                    if variant_kind
                    else "not a variant (no parent model)"
                )
                skipped = StepResult.skipped("parent_agreement", reason)
                skipped.data["not_a_variant"] = variant_kind is None
                record(skipped)
            else:
                assert agreement_inputs is not None
                agreement_file = (
                    inputs_file
                    if agreement_inputs is prepared
                    else agreement_inputs.save(work / "parent_inputs.npz")
                )
                record(
                    isolated(
                        "parent_agreement",
                        limits.parent_agreement_s,
                        agreement_file,
                        model_path=str(model),
                        parent_model_path=str(parent),
                        inputs=agreement_inputs,
                        variant_kind=variant_kind,
                        score_output=score_output,
                        intra_op_num_threads=intra_op_num_threads,
                        **bundle_kwargs,
                    )
                )
            variants_dir = work / "variants"
            for step_name in ("quantization_int8", "quantization_fp16"):
                if metadata.external_data_files:
                    why, flags = EXTERNAL_DATA_REASON, {"external_data": True}
                elif variant_kind is not None:
                    why, flags = (
                        not_quantized_again_reason(variant_kind),
                        {"variant_kind": variant_kind},
                    )
                else:
                    why = ""
                if why:
                    skipped = StepResult.skipped(step_name, why)
                    skipped.data.update(not_applicable=True, **flags)
                    record(skipped)
                    continue
                record(
                    isolated(
                        step_name,
                        limits.quantization_s,
                        inputs_file,
                        model_path=str(model),
                        inputs=prepared,
                        output_dir=str(variants_dir),
                        score_output=score_output,
                        intra_op_num_threads=intra_op_num_threads,
                        latency_rule=variant_latency_rule,
                        min_top1_agreement=gates.min_variant_top1_agreement,
                        min_sqnr_db=gates.min_variant_sqnr_db,
                    )
                )
            if prepared.synthetic:
                record(StepResult.skipped("calibration", SYNTHETIC_NOTE))
            elif prepared.labels is None:
                record(StepResult.skipped("calibration", "no labels in the uploaded inputs"))
            else:
                record(
                    isolated(
                        "calibration",
                        limits.calibration_s,
                        inputs_file,
                        model_path=str(model),
                        inputs=prepared,
                        score_output=score_output,
                        intra_op_num_threads=intra_op_num_threads,
                        **bundle_kwargs,
                    )
                )
    gate_step = record(
        evaluate_gates(steps=steps, thresholds=gates, documentary_target=documentary)
    )
    return ValidationReport(
        model_file=model.name,
        expected_sha256=expected_sha256.lower(),
        target=target.to_dict(include_operators=False),
        metadata=metadata_dict,
        inputs=prepared.describe() if prepared is not None else None,
        steps=steps,
        passed=bool(gate_step.data["passed"]),
        verdict=gate_step.data["verdict"],
        reasons=list(gate_step.data["reasons"]),
        started_at=started_at,
        finished_at=_now(),
        environment=machine_description(
            intra_op_num_threads=intra_op_num_threads, host_shared=host_shared
        ),
        measurement_label=DOCUMENTARY_LATENCY_LABEL if documentary else REFERENCE_LABEL,
    )
