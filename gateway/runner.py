"""Model runners: what turns an input into a prediction on the gateway.

`OnnxRunner` runs the installed ONNX file in onnxruntime (CPU), reads the scores the model's
signed I/O contract names (or its one floating-point output of rank 1 or 2) and maps them to the
contract's class names. `SyntheticRunner` is the simulator's stand-in: same interface, numbers
drawn from a profile instead of a graph, so simulated gateways run every other code path of
the agent (queue, sender, verifier, installer) for real.

A runner is built only from a verified manifest (`gateway.installer` checks the envelope and
every file first) and must pass `health_check` on a reference input before it serves.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from protocol.contract import IoContract, resolve_score_output
from protocol.manifest import ModelManifest

__all__ = [
    "HealthCheckFailed",
    "InputError",
    "ModelRunner",
    "OnnxRunner",
    "Prediction",
    "SyntheticProfile",
    "SyntheticRunner",
    "reference_inputs",
]


class InputError(ValueError):
    """The caller's input does not fit the model (the message says how)."""


class HealthCheckFailed(RuntimeError):
    """The model loaded but did not answer a reference input sensibly."""


@dataclass(frozen=True)
class Prediction:
    predicted_class: str
    confidence: float
    scores: tuple[float, ...]
    latency_ms: float
    shape_bucket: str


class ModelRunner(Protocol):
    labels: tuple[str, ...]

    def predict(self, inputs: Any) -> Prediction: ...

    def health_check(self) -> Prediction: ...

    def close(self) -> None: ...


def _dim(value: int | str) -> int:
    return value if isinstance(value, int) and value > 0 else 1


def reference_inputs(manifest: ModelManifest, *, seed: int = 0) -> dict[str, Any]:
    """A deterministic input for every model input: dynamic axes as 1, values in [0, 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = {}
    for spec in manifest.input_schema:
        shape = tuple(_dim(d) for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            arrays[spec.name] = rng.random(shape).astype(dtype)
        elif dtype.kind in "iu":
            arrays[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            arrays[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise HealthCheckFailed(
                f"input {spec.name!r} has type {spec.dtype}: no reference input"
            )
    return arrays


def _softmax(values: Sequence[float]) -> list[float]:
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class OnnxRunner:
    """An installed ONNX model in an onnxruntime session (thread-safe ``run``)."""

    def __init__(self, path: str | Path, manifest: ModelManifest, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.manifest = manifest
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception classes
            raise HealthCheckFailed(f"onnxruntime could not load the model: {exc}") from exc
        outputs = [
            {"name": o.name, "dtype": _ort_dtype(o.type), "shape": list(o.shape or [])}
            for o in self.session.get_outputs()
        ]
        self.contract: IoContract | None = manifest.io_contract
        if self.contract is not None:
            name = resolve_score_output(self.contract, outputs)
        else:
            floats = [o for o in outputs if o["dtype"] in ("float32", "float64", "float16")]
            candidates = [o for o in floats if len(o["shape"]) in (1, 2)]
            name = candidates[0]["name"] if len(candidates) >= 1 else None
        if name is None:
            raise HealthCheckFailed("no output of the model holds class scores")
        self.score_output = name
        self.logits = self.contract is not None and self.contract.scores == "logits"
        self.labels: tuple[str, ...] = self.contract.labels if self.contract else ()
        self._specs = {spec.name: spec for spec in manifest.input_schema}

    def _arrays(self, inputs: Any) -> dict[str, Any]:
        import numpy as np

        if not isinstance(inputs, Mapping):
            if len(self._specs) != 1:
                raise InputError(
                    f"the model has {len(self._specs)} inputs ({', '.join(self._specs)}):"
                    ' send {"inputs": {name: values}}'
                )
            inputs = {next(iter(self._specs)): inputs}
        unknown = sorted(set(inputs) - set(self._specs))
        missing = sorted(set(self._specs) - set(inputs))
        if unknown or missing:
            raise InputError(
                "inputs must be exactly "
                + ", ".join(self._specs)
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        arrays = {}
        for name, value in inputs.items():
            spec = self._specs[name]
            try:
                array = np.asarray(value, dtype=np.dtype(spec.dtype))
            except (TypeError, ValueError, OverflowError) as exc:
                raise InputError(f"input {name!r} is not an array of {spec.dtype}: {exc}") from None
            if array.ndim == len(spec.shape) - 1:
                array = array[np.newaxis, ...]  # one sample without its batch axis
            if array.ndim != len(spec.shape):
                raise InputError(
                    f"input {name!r} has {array.ndim} dimensions, the model expects"
                    f" {len(spec.shape)} ({list(spec.shape)})"
                )
            for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
                if isinstance(want, int) and want > 0 and got != want:
                    raise InputError(
                        f"input {name!r} dimension {axis} is {got}, the model expects {want}"
                    )
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise InputError(f"input {name!r} holds NaN or infinity")
            arrays[name] = array
        return arrays

    def predict(self, inputs: Any) -> Prediction:
        import numpy as np

        arrays = self._arrays(inputs)
        began = time.perf_counter()
        try:
            (scores,) = self.session.run([self.score_output], arrays)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's run errors are untyped
            raise InputError(f"the model refused the input: {exc}") from None
        latency = (time.perf_counter() - began) * 1000.0
        row = (
            np.asarray(scores, dtype=np.float64).reshape(-1)
            if np.ndim(scores) < 2
            else np.asarray(scores[0], dtype=np.float64)
        )
        values = [float(v) for v in row]
        if not values or not all(math.isfinite(v) for v in values):
            raise HealthCheckFailed("the model answered non-finite scores")
        if self.logits:
            values = _softmax(values)
        best = max(range(len(values)), key=values.__getitem__)
        labels = self.labels or tuple(str(i) for i in range(len(values)))
        if len(labels) != len(values):
            raise HealthCheckFailed(f"{len(values)} scores for {len(labels)} class names")
        confidence = min(1.0, max(0.0, values[best]))
        bucket = "x".join(str(d) for d in next(iter(arrays.values())).shape)
        return Prediction(
            labels[best], round(confidence, 6), tuple(values), round(latency, 3), bucket[:40]
        )

    def health_check(self) -> Prediction:
        try:
            return self.predict(reference_inputs(self.manifest))
        except InputError as exc:
            raise HealthCheckFailed(f"the reference input failed: {exc}") from exc

    def close(self) -> None:
        # The session stays usable: a request already running on the replaced model ends
        # normally, and the session is freed with the last reference to this runner.
        self.closed = True


def _ort_dtype(type_text: str) -> str:
    inner = type_text.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64", "float16": "float16"}.get(inner, inner)


@dataclass(frozen=True)
class SyntheticProfile:
    """How a simulated model behaves: its latency, its confidence, whether it loads at all."""

    base_latency_ms: float = 12.0
    latency_factor: float = 1.0
    confidence_mean: float = 0.86
    confidence_sd: float = 0.08
    class_weights: tuple[float, ...] = ()
    fails_health_check: bool = False
    # A share of hard cases whose confidence is drawn uniformly from ``hard_confidence``
    # instead (what a review threshold catches); 0 draws nothing extra.
    hard_case_share: float = 0.0
    hard_confidence: tuple[float, float] = (0.3, 0.6)


class SyntheticRunner:
    """A stand-in runner for simulated gateways: draws, does not compute."""

    def __init__(
        self, manifest: ModelManifest, profile: SyntheticProfile, *, seed: int = 0
    ) -> None:
        self.manifest = manifest
        self.profile = profile
        self.labels = manifest.io_contract.labels if manifest.io_contract else ("ok", "damaged")
        self._rng = random.Random(seed)  # noqa: S311 - simulation
        self._lock = threading.Lock()
        self.drift: tuple[float, float] | None = (
            None  # (first-class weight factor, confidence drop)
        )
        self.extra_latency_factor = 1.0

    def predict(self, inputs: Any = None) -> Prediction:
        with self._lock:
            rng = self._rng
            weights = list(self.profile.class_weights or [1.0] * len(self.labels))
            drop = 0.0
            if self.drift is not None:
                weights[0] *= self.drift[0]
                drop = self.drift[1]
            predicted = rng.choices(range(len(self.labels)), weights)[0]
            confidence = rng.gauss(self.profile.confidence_mean, self.profile.confidence_sd) - drop
            if self.profile.hard_case_share > 0 and rng.random() < self.profile.hard_case_share:
                confidence = rng.uniform(*self.profile.hard_confidence) - drop
            confidence = round(min(0.999, max(0.05, confidence)), 4)
            latency = self.profile.base_latency_ms * self.profile.latency_factor
            latency *= self.extra_latency_factor * rng.lognormvariate(0.0, 0.2)
        scores = [0.0] * len(self.labels)
        scores[predicted] = confidence
        return Prediction(
            self.labels[predicted], confidence, tuple(scores), round(latency, 3), "1x3x224x224"
        )

    def health_check(self) -> Prediction:
        if self.profile.fails_health_check:
            raise HealthCheckFailed("the reference input produced no usable scores")
        return self.predict(None)

    def close(self) -> None:
        pass
