"""The daemon's edges: its configuration, its local inference endpoint, its drop folder and
its command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gateway.config import AgentConfig, ConfigError, load_config
from gateway.serve import MAX_BODY_BYTES, DropFolder, make_server
from tests.gateway.test_agent import INPUT, setup  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_comes_from_defaults_then_the_file_then_the_environment(tmp_path):
    assert load_config(tmp_path, environ={}) == AgentConfig()
    (tmp_path / "gateway.toml").write_text('batch_size = 100\noverflow = "drop_newest"\n')
    config = load_config(tmp_path, environ={"OPSHERO_GATEWAY_BATCH_SIZE": "50"})
    assert (config.batch_size, config.overflow) == (50, "drop_newest")


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("batch_sise = 10\n", {}, "unknown key(s) batch_sise"),
        ('batch_size = "ten"\n', {}, "batch_size"),
        ("batch_size = 0\n", {}, "batch_size must be at least 1"),
        ('overflow = "drop_all"\n', {}, "overflow must be drop_oldest or drop_newest"),
        ('listen = "8710"\n', {}, "listen must be HOST:PORT"),
        ("queue_ttl_hours = [1]\n", {}, "queue_ttl_hours"),
        ("this is not toml", {}, "is not valid TOML"),
        ("", {"OPSHERO_GATEWAY_QUEUE_MAX_MB": "lots"}, "OPSHERO_GATEWAY_QUEUE_MAX_MB"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_key(tmp_path, text, environ, message):
    (tmp_path / "gateway.toml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, environ=environ)
    assert message in str(refused.value)


def test_a_named_configuration_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path, config_file=tmp_path / "missing.toml", environ={})


def test_run_refuses_to_start_unenrolled_or_misconfigured(tmp_path):
    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "run", "--state-dir", str(tmp_path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    done = run()
    assert done.returncode == 3 and "not enrolled" in done.stderr
    (tmp_path / "gateway.toml").write_text("batch_size = -1\n")
    done = run()
    assert done.returncode == 3 and "batch_size must be at least 1" in done.stderr


def _post(url: str, body: bytes, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - loopback
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_local_endpoint_answers_predictions_and_precise_errors(setup):  # noqa: F811
    _, _, agent = setup
    agent.poll_desired()
    server = make_server(agent, ("127.0.0.1", 0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        url = f"{base}/v1/models/dock%20damage/predict"
        status, answer = _post(url, json.dumps({"input": INPUT, "workflow": {"lane": 3}}).encode())
        assert status == 200 and answer["version"] == "1.0.0"
        assert answer["event"]["sequence"] == 0
        assert _post(url, b"{not json")[0] == 400
        status, answer = _post(url, json.dumps({"input": [[1, 2]]}).encode())
        assert status == 400 and answer["error"]["code"] == "invalid_input"
        status, answer = _post(url, json.dumps({"input": INPUT, "workflow": {"": 1}}).encode())
        assert status == 400 and answer["error"]["code"] == "invalid_workflow_fields"
        status, answer = _post(
            f"{base}/v1/models/other/predict", json.dumps({"input": INPUT}).encode()
        )
        assert status == 404 and answer["error"]["code"] == "unknown_model"
        status, answer = _post(
            url,
            b"",
            {"Content-Type": "application/json", "Content-Length": str(MAX_BODY_BYTES + 1)},
        )
        assert status == 413
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:  # noqa: S310
            health = json.loads(response.read())
        assert health["queue"]["enqueued"] == 1  # only the good request became an event
        with urllib.request.urlopen(f"{base}/v1/models", timeout=5) as response:  # noqa: S310
            (model,) = json.loads(response.read())["models"]
        assert model["model"] == "dock damage" and model["served"] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_the_drop_folder_infers_each_file_once_and_files_the_result(setup, tmp_path):  # noqa: F811
    _, _, agent = setup
    agent.poll_desired()
    drop = tmp_path / "drop"
    folder = DropFolder(agent, drop)
    np.save(drop / "cam-1.npy", np.asarray(INPUT, dtype=np.float32))
    (drop / "dock damage").mkdir()
    (drop / "dock damage" / "cam-2.json").write_text(json.dumps({"input": INPUT}))
    (drop / "cam-3.json").write_text("{broken")
    (drop / ".cam-4.json").write_text(json.dumps({"input": INPUT}))  # still being written
    assert folder.scan_once() == 3
    assert folder.scan_once() == 0  # nothing twice
    done = json.loads((drop / "done" / "cam-1.result.json").read_text())
    assert done["version"] == "1.0.0"
    assert (drop / "done" / "cam-2.json").exists()
    failed = json.loads((drop / "failed" / "cam-3.result.json").read_text())
    assert failed["error"]["code"] == "unreadable"
    assert (drop / ".cam-4.json").exists()
    assert agent.queue.counts().enqueued == 2
