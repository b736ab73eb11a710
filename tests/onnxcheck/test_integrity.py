"""The integrity step: digest, ``onnx.checker`` and strict shape inference."""

from __future__ import annotations

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
