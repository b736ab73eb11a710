"""The Procfile `make run` starts: heavy validation steps never share cores with each other."""

from __future__ import annotations

import shlex
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
