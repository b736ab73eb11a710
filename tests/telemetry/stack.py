"""The production shape for end-to-end tests: a private Redis, gunicorn, Celery worker and beat.

Each part is its own process, started from this checkout's virtualenv against the test
database, with its output in ``tmp_path/<name>.log`` (shown when a test fails).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp, self.env, self.running = tmp, env, {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = (proc, log)
        return proc

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        proc, log = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(30)
        log.close()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name)


def redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stack_env(tmp_path: Path, redis_port: int, **extra: str) -> dict[str, str]:
    """The environment of every process: the test database, the private Redis, ``extra``."""
    db = connections["default"].settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opshero.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "OPSHERO_VAR_DIR": str(tmp_path / "var"),
        "HOME": str(tmp_path),
        "DB_CONN_MAX_AGE": "0",
        **extra,
    }
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "OPSHERO_TEST_REDIS_DBS"):
        env.pop(name, None)
    return env


def redis_command(port: int, directory: Path) -> list[str]:
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]


def gunicorn_command(port: int) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "opshero.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "2",
        "--access-logfile",
        "-",
    ]


def worker_command(*, concurrency: int = 1, queues: str = "ingest") -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "opshero",
        "worker",
        "--queues",
        queues,
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]


def beat_command(schedule: Path) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "opshero",
        "beat",
        "--schedule",
        str(schedule),
        "--loglevel",
        "INFO",
    ]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
