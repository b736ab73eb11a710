"""One child process per heavy step, so that no step can hang or crash the validation run.

:func:`run_isolated` writes the step's keyword arguments as JSON (representative inputs as the
path of their ``.npz``, target profile and latency rule as dicts), runs ``python -m
onnxcheck.worker`` with a wall-clock limit and an optional address-space cap (:class:`StepLimits`)
and reads the :class:`~onnxcheck.results.StepResult` back. A step that exceeds its limit is killed
and recorded as failed with the reason; so is one whose process dies (segfault, OOM kill). The
worker side is :func:`decode_kwargs` and :func:`run_step`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnxcheck.calibration import check_calibration
from onnxcheck.compatibility import check_compatibility
from onnxcheck.inputs import RepresentativeInputs
from onnxcheck.integrity import check_integrity
from onnxcheck.latency import LatencyRule, check_latency
from onnxcheck.operators import TargetProfile
from onnxcheck.results import FAILED, StepResult, first_line, scrub_step
from onnxcheck.variants import check_fp16_variant, check_int8_variant, check_parent_agreement


@dataclass(frozen=True)
class StepLimits:
    """Wall-clock limits per step (seconds) and an optional address-space cap per child."""

    integrity_s: float = 300.0
    compatibility_s: float = 300.0
    latency_s: float | None = None
    quantization_s: float = 900.0
    calibration_s: float = 600.0
    parent_agreement_s: float = 600.0
    address_space_bytes: int | None = None
    isolate: bool = True

    def latency_limit(self, rule: LatencyRule, buckets: int) -> float:
        """Default: each bucket's worst case plus margin for session creation and slow runs."""
        if self.latency_s is not None:
            return self.latency_s
        return 120.0 + buckets * (rule.worst_case_seconds() + 30.0)


DEFAULT_STEP_LIMITS = StepLimits()


_STEP_FUNCTIONS: dict[str, Callable[..., StepResult]] = {
    "integrity": check_integrity,
    "compatibility": check_compatibility,
    "latency": check_latency,
    "quantization_int8": check_int8_variant,
    "quantization_fp16": check_fp16_variant,
    "calibration": check_calibration,
    "parent_agreement": check_parent_agreement,
}


def encode_kwargs(kwargs: Mapping[str, Any], inputs_file: Path | None) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, RepresentativeInputs):
            encoded[key] = {"__inputs__": str(inputs_file)}
        elif isinstance(value, TargetProfile):
            encoded[key] = {"__target__": value.to_dict()}
        elif isinstance(value, LatencyRule):
            encoded[key] = {"__rule__": value.to_dict()}
        elif isinstance(value, Path):
            encoded[key] = str(value)
        else:
            encoded[key] = value
    return encoded


def decode_kwargs(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of the parent's encoding, used by :mod:`onnxcheck.worker`."""
    decoded: dict[str, Any] = {}
    for key, value in encoded.items():
        if isinstance(value, Mapping) and "__inputs__" in value:
            decoded[key] = RepresentativeInputs.load(value["__inputs__"])
        elif isinstance(value, Mapping) and "__target__" in value:
            decoded[key] = TargetProfile.from_dict(value["__target__"])
        elif isinstance(value, Mapping) and "__rule__" in value:
            decoded[key] = LatencyRule.from_dict(value["__rule__"])
        else:
            decoded[key] = value
    return decoded


def run_step(step: str, **kwargs: Any) -> StepResult:
    """Call a step function in this process (what the worker subprocess does)."""
    return _STEP_FUNCTIONS[step](**kwargs)


def run_isolated(
    step: str,
    kwargs: Mapping[str, Any],
    *,
    workdir: Path,
    timeout_s: float,
    limits: StepLimits,
    inputs_file: Path | None,
    display_names: Mapping[str, str] | None = None,
) -> StepResult:
    """Run one step and return its result with server paths scrubbed (``display_names``
    maps the model's and inputs' paths to the names users know; ``workdir`` disappears)."""
    names = {os.fspath(workdir): "", **(display_names or {})}
    return scrub_step(_run_isolated(step, kwargs, workdir, timeout_s, limits, inputs_file), names)


def _run_isolated(
    step: str,
    kwargs: Mapping[str, Any],
    workdir: Path,
    timeout_s: float,
    limits: StepLimits,
    inputs_file: Path | None,
) -> StepResult:
    started = time.perf_counter()
    if not limits.isolate:
        return run_step(step, **kwargs)
    request = workdir / f"{step}.request.json"
    result = workdir / f"{step}.result.json"
    result.unlink(missing_ok=True)
    request.write_text(
        json.dumps(
            {
                "step": step,
                "kwargs": encode_kwargs(kwargs, inputs_file),
                "address_space_bytes": limits.address_space_bytes,
            }
        )
    )
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (package_root, env.get("PYTHONPATH", "")) if part
    )
    log = workdir / f"{step}.log"
    with open(log, "wb") as log_file:
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
                [sys.executable, "-m", "onnxcheck.worker", str(request), str(result)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                env=env,
                cwd=workdir,
                check=False,
            )
            returncode = completed.returncode
        except subprocess.TimeoutExpired:
            elapsed = (time.perf_counter() - started) * 1000.0
            return StepResult(
                step,
                FAILED,
                elapsed,
                [f"{step} exceeded its time limit of {timeout_s:.0f} s and was stopped"],
                {"timed_out": True, "timeout_s": timeout_s},
            )
    elapsed = (time.perf_counter() - started) * 1000.0
    if returncode == 0 and result.is_file():
        outcome = StepResult.from_dict(json.loads(result.read_text()))
        # The step's own timing excludes starting the process; progress shows wall time.
        outcome.data.setdefault("compute_ms", outcome.duration_ms)
        outcome.duration_ms = elapsed
        return outcome
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    how = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    return StepResult(
        step,
        FAILED,
        elapsed,
        [f"the {step} worker process died ({how}): {first_line(Exception(tail), 800)}"],
        {"returncode": returncode},
    )
