"""The Procfile `make run` starts: heavy validation steps never share cores with each other,
and the demo fleet is one more process that idles when turned off."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _processes() -> dict[str, list[str]]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command)
    return processes


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _celery_workers() -> dict[str, list[str]]:
    return {
        name: argv
        for name, argv in _processes().items()
        if any(part.endswith("/celery") for part in argv) and "worker" in argv
    }


def test_validation_queue_has_its_own_worker_running_one_task_with_explicit_threads():
    workers = _celery_workers()
    consuming = {name: _option(argv, "--queues").split(",") for name, argv in workers.items()}
    (validation,) = [name for name, queues in consuming.items() if "validation" in queues]
    assert consuming[validation] == ["validation"]  # nothing else shares its worker
    argv = workers[validation]
    assert _option(argv, "--concurrency") == "1"  # one validation at a time
    assert _option(argv, "--prefetch-multiplier") == "1"  # the next run waits in the queue
    assert any(part.startswith("VALIDATION_THREADS=") for part in argv)  # explicit threads


def test_every_other_queue_is_consumed_by_another_worker():
    consumed = {
        queue
        for name, argv in _celery_workers().items()
        for queue in _option(argv, "--queues").split(",")
        if "validation" not in _option(argv, "--queues")
    }
    assert consumed == {"default", "ingest", "rollouts"}
    names = [_option(argv, "--hostname").split("@")[0] for argv in _celery_workers().values()]
    assert len(set(names)) == len(names) == 2  # distinct node names on one host


def test_make_run_starts_the_demo_fleet_which_stays_idle_when_turned_off():
    assert _processes()["demo-fleet"][-2:] == ["manage.py", "demo_fleet"]
    from rollouts import demo_fleet

    # Decided before any database access: DEMO_FLEET=0 never reaches the simulator.
    decision = demo_fleet.decide(environ={"DEMO_FLEET": "0"})
    assert decision.run is False and "DEMO_FLEET=0" in decision.reason


def test_an_idle_demo_fleet_waits_for_honcho_s_sigterm_and_then_exits_cleanly(tmp_path):
    # honcho stops every process once one exits, so an idle demo fleet must not exit by itself.
    env = {**os.environ, "DEMO_FLEET": "0", "OPSHERO_VAR_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "demo_fleet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "DEMO_FLEET=0" in line and "Idle until stopped" in line
        time.sleep(1.0)
        assert process.poll() is None  # still there: `make run` keeps running
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not (tmp_path / "demo-fleet").exists()  # no keys, no simulator state
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
