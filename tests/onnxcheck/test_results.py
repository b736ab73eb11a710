"""Reports never quote server paths: :func:`onnxcheck.results.scrub_paths` and the runner."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest

from onnxcheck import runner
from onnxcheck.results import FAILED, StepResult, scrub_paths, scrub_step
from onnxcheck.runner import StepLimits, run_isolated


def test_known_paths_become_display_names_and_other_paths_their_last_component():
    text = (
        "Load model from /srv/work/run-5/stored/model.onnx failed; see /var/media/artifacts/1/"
        "ab12-detector.onnx:3, https://github.com/onnx/onnx/blob/main/x.md, 7 items/s, "
        "ai.onnx:Conv"
    )
    scrubbed = scrub_paths(text, {"/srv/work/run-5/stored/model.onnx": "detector.onnx"})
    assert scrubbed == (
        "Load model from detector.onnx failed; see ab12-detector.onnx:3, "
        "https://github.com/onnx/onnx/blob/main/x.md, 7 items/s, ai.onnx:Conv"
    )


def test_an_onnxruntime_error_loses_the_server_path(tmp_path):
    broken = tmp_path / "deep" / "work" / "model.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x08\x07not a model")
    with pytest.raises(Exception) as excinfo:
        ort.InferenceSession(str(broken), providers=["CPUExecutionProvider"])
    assert str(tmp_path) in str(excinfo.value)  # onnxruntime quotes the absolute path
    scrubbed = scrub_paths(str(excinfo.value), {str(broken): "detector.onnx"})
    assert str(tmp_path) not in scrubbed and "detector.onnx" in scrubbed


def test_step_findings_and_data_are_scrubbed_but_caller_paths_are_kept(tmp_path):
    result = StepResult(
        "quantization_int8",
        FAILED,
        1.0,
        [f"could not read {tmp_path}/run/model.onnx"],
        {"error": f"at {tmp_path}/run/inputs.npz", "variant": {"path": f"{tmp_path}/v.onnx"}},
    )
    scrubbed = scrub_step(result, {str(tmp_path / "run"): ""})
    assert scrubbed.findings == ["could not read model.onnx"]
    assert scrubbed.data["error"] == "at inputs.npz"
    assert scrubbed.data["variant"]["path"] == f"{tmp_path}/v.onnx"


def test_every_step_the_runner_returns_is_scrubbed(tmp_path, monkeypatch):
    model = tmp_path / "work" / "stored" / "model.onnx"

    def leaky(**kwargs):
        return StepResult("integrity", FAILED, 1.0, [f"cannot open {kwargs['model_path']}"])

    monkeypatch.setitem(runner._STEP_FUNCTIONS, "integrity", leaky)
    result = run_isolated(
        "integrity",
        {"model_path": str(model)},
        workdir=tmp_path / "work",
        timeout_s=10,
        limits=StepLimits(isolate=False),
        inputs_file=None,
        display_names={str(model): "detector.onnx"},
    )
    assert result.findings == ["cannot open detector.onnx"]
    assert str(tmp_path) not in json.dumps(result.to_dict())
