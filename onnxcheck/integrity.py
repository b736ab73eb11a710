"""Step (a), ``integrity``: is the stored file the one uploaded, and is it valid ONNX?

The digest is re-computed from disk, the file is inspected safely (:mod:`onnxcheck.inspection`),
then ``onnx.checker`` (full check) and strict shape inference run on it. A refused file or a
digest mismatch is fatal: :func:`onnxcheck.pipeline.run_validation` stops there, because evidence
about another file is worthless.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import onnx

from onnxcheck.inspection import (
    DEFAULT_MAX_MODEL_BYTES,
    DEFAULT_MAX_TENSOR_ELEMENTS,
    ModelRejected,
    load_checked_model,
    sha256_file,
)
from onnxcheck.results import FAILED, StepResult, StepTimer, first_line, step_status


def check_integrity(
    *,
    model_path: str | os.PathLike[str],
    expected_sha256: str,
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    external_root: str | os.PathLike[str] | None = None,
) -> StepResult:
    """Digest, safe inspection, ``onnx.checker`` (full check) and strict shape inference.

    The digest is re-computed from disk because the file may have changed since upload. Checker
    and shape-inference errors become findings; a refused file or a digest mismatch sets
    ``data["fatal"]`` so the run stops. ``external_root`` is the unpacked bundle of a model with
    external data (``None`` for a single ``.onnx``, which then may reference none; see
    :func:`onnxcheck.inspection.inspect_model`). The digest covers the ``.onnx`` file only.
    The safe inspection runs before ``onnx.checker``, which would otherwise follow external-data
    locations itself.
    """
    timer = StepTimer()
    path = Path(model_path)
    findings: list[str] = []
    data: dict[str, Any] = {"expected_sha256": expected_sha256.lower()}
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return StepResult(
            "integrity", FAILED, timer.ms(), [f"cannot read the model: {exc}"], {"fatal": True}
        )
    data["sha256"] = actual
    data["sha256_matches"] = actual == expected_sha256.lower()
    if not data["sha256_matches"]:
        findings.append(f"SHA-256 mismatch: expected {expected_sha256.lower()}, file is {actual}")
        data["fatal"] = True
        return StepResult("integrity", FAILED, timer.ms(), findings, data)
    try:
        _, metadata = load_checked_model(
            path=path,
            max_bytes=max_bytes,
            max_tensor_elements=max_tensor_elements,
            external_root=external_root,
        )
    except ModelRejected as exc:
        findings.append(f"refused ({exc.code}): {exc.message}")
        data.update(fatal=True, rejection=exc.to_dict())
        return StepResult("integrity", FAILED, timer.ms(), findings, data)
    data["metadata"] = metadata.to_dict()

    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
        data["checker_passed"] = True
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        data["checker_passed"] = False
        findings.append(f"onnx.checker (full_check): {first_line(exc)}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            onnx.shape_inference.infer_shapes_path(
                os.fspath(path),
                os.fspath(Path(scratch) / "inferred.onnx"),
                check_type=True,
                strict_mode=True,
                data_prop=True,
            )
            data["strict_shape_inference_passed"] = True
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
            data["strict_shape_inference_passed"] = False
            findings.append(f"strict shape inference: {first_line(exc)}")
    data["fatal"] = False
    return StepResult("integrity", step_status(bool(findings)), timer.ms(), findings, data)
