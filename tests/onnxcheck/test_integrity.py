"""The integrity step: digest, ``onnx.checker`` and strict shape inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

from onnxcheck.inspection import sha256_file
from onnxcheck.integrity import check_integrity
from tests import onnx_models


def test_integrity_passes_for_a_real_model_and_reports_a_wrong_digest(digits):
    good = check_integrity(
        model_path=digits.model_path, expected_sha256=sha256_file(digits.model_path)
    )
    assert good.status == "passed", good.findings
    assert good.data["checker_passed"] and good.data["strict_shape_inference_passed"]
    bad = check_integrity(model_path=digits.model_path, expected_sha256="0" * 64)
    assert bad.status == "failed" and bad.data["fatal"] is True
    assert "SHA-256 mismatch" in bad.findings[0]


def test_integrity_records_checker_failures_as_findings(tmp_path):
    model = onnx_models.tiny_model()
    model.graph.node[1].input[0] = "does_not_exist"  # Relu reads an undefined value
    path = onnx_models.write_model(model, tmp_path / "broken.onnx")
    result = check_integrity(model_path=path, expected_sha256=sha256_file(path))
    assert result.status == "failed" and result.data["fatal"] is False
    assert result.data["checker_passed"] is False
    assert any("onnx.checker" in finding for finding in result.findings)


def _external_weights_bundle(bundle: Path) -> Path:
    """``bundle/model.onnx`` with every initializer in ``bundle/model.data`` (onnx's own writer)."""
    model = onnx_models.tiny_model()
    model.graph.initializer.append(
        numpy_helper.from_array(np.ones((8, 8), dtype=np.float32), "unused_weights")
    )
    convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="model.data", size_threshold=0
    )
    bundle.mkdir(parents=True)
    onnx.save_model(model, bundle / "model.onnx")
    return bundle / "model.onnx"


def test_integrity_of_a_bundle_with_external_data(tmp_path):
    path = _external_weights_bundle(tmp_path / "bundle")
    digest = sha256_file(path)
    result = check_integrity(model_path=path, expected_sha256=digest, external_root=path.parent)
    assert result.data["fatal"] is False, result.findings
    assert result.data["checker_passed"] is True
    assert result.data["metadata"]["external_data_files"] == ["model.data"]

    single = check_integrity(model_path=path, expected_sha256=digest)
    assert single.status == "failed" and single.data["fatal"] is True
    assert single.data["rejection"]["code"] == "external_data_not_allowed"
    assert "onnx.checker" not in " ".join(single.findings)  # refused before any loader ran


def test_integrity_refuses_a_bundle_reference_outside_the_bundle(tmp_path):
    path = _external_weights_bundle(tmp_path / "bundle")
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../model.data"
    onnx_models.write_model(model, path)
    (tmp_path / "model.data").write_bytes((path.parent / "model.data").read_bytes())
    result = check_integrity(
        model_path=path, expected_sha256=sha256_file(path), external_root=path.parent
    )
    assert result.data["fatal"] is True
    assert result.data["rejection"]["code"] == "external_data_outside_upload"
