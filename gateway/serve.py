"""The gateway's local inference endpoint and its drop folder.

HTTP (standard library ``ThreadingHTTPServer``), meant for apps on the site network only::

    GET  /healthz                       200 {"status": "ok", "models", "online", "queue": {...}}
    GET  /v1/models                     the models that serve, with their class names
    POST /v1/models/<model>/predict     {"input": [...]} or {"inputs": {name: [...]}},
                                        optional "workflow": {key: value}
        → 200 {"model", "version", "prediction", "confidence", "needs_review",
               "review_threshold", "latency_ms", "event", "notice" (clinic sites)}

Errors are JSON ``{"error": {"code", "message"}}``: 400 invalid_json / invalid_input /
invalid_workflow_fields, 404 unknown_model, 413 too_large, 503 model_error.

Drop folder: a camera (or any app) writes ``<drop>/<model>/<name>.json`` (the same body as
the HTTP call) or ``<name>.npy`` (one input array); with a single model loaded the file may
sit directly in ``<drop>``. Write to a dot-file and rename it when complete: dot-files are
never read. Each file is inferred once and moved to ``<drop>/done/`` with
``<name>.result.json`` beside it, or to ``<drop>/failed/`` with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .agent import Agent, InferenceRefused

__all__ = ["MAX_BODY_BYTES", "DropFolder", "make_server"]

MAX_BODY_BYTES = 8 * 1024 * 1024
log = logging.getLogger("opshero.gateway.serve")


def _split_body(data: Any) -> tuple[Any, dict | None]:
    if not isinstance(data, dict) or ("input" in data) == ("inputs" in data):
        raise InferenceRefused(
            400, "invalid_input", 'send {"input": [...]} or {"inputs": {name: [...]}}'
        )
    workflow = data.get("workflow")
    if workflow is not None and not isinstance(workflow, dict):
        raise InferenceRefused(400, "invalid_workflow_fields", "workflow must be an object")
    return data.get("inputs", data.get("input")), workflow


def make_server(agent: Agent, address: tuple[str, int]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "opshero-gateway"
        protocol_version = "HTTP/1.1"
        timeout = 15  # seconds a client may take to send its request (no slow-loris hold)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http", extra={"fields": {"line": format % args}})

        def _answer(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            self._answer(status, {"error": {"code": code, "message": message}})

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/healthz":
                self._answer(200, agent.status())
            elif path == "/v1/models":
                self._answer(
                    200,
                    {
                        "models": agent.model_names(),
                        "policy": {
                            "review_threshold": agent.policy.get("review_threshold"),
                            "site_kind": agent.policy.get("site_kind", ""),
                        },
                    },
                )
            else:
                self._error(404, "not_found", f"no such endpoint: {path}")

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["v1", "models"] or parts[3] != "predict":
                self._error(404, "not_found", f"no such endpoint: {path}")
                return
            model = urllib.parse.unquote(parts[2])
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self._error(413, "too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
                self.close_connection = True
                return
            raw = self.rfile.read(length)
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                self._error(400, "invalid_json", "the body is not JSON")
                return
            try:
                inputs, workflow = _split_body(data)
                self._answer(200, agent.infer(model, inputs, workflow_fields=workflow))
            except InferenceRefused as exc:
                self._error(exc.status, exc.code, exc.message)

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET

    server = Server(address, Handler)
    server.daemon_threads = True
    return server


class DropFolder:
    """Infers files dropped into a folder (see the module docstring)."""

    def __init__(self, agent: Agent, folder: str | os.PathLike[str]) -> None:
        self.agent = agent
        self.root = Path(folder)
        self.done = self.root / "done"
        self.failed = self.root / "failed"
        for path in (self.root, self.done, self.failed):
            path.mkdir(parents=True, exist_ok=True)

    def _candidates(self) -> list[tuple[str | None, Path]]:
        found = []
        for child in sorted(self.root.iterdir()):
            if child.name.startswith(".") or child in (self.done, self.failed):
                continue
            if child.is_dir():
                found += [
                    (child.name, f)
                    for f in sorted(child.iterdir())
                    if f.is_file() and not f.name.startswith(".")
                ]
            elif child.is_file():
                found.append((None, child))
        return found

    def scan_once(self) -> int:
        handled = 0
        for model, path in self._candidates():
            if path.suffix not in (".json", ".npy"):
                continue
            handled += 1
            try:
                result = self._infer(model, path)
            except InferenceRefused as exc:
                self._move(path, self.failed, {"error": {"code": exc.code, "message": exc.message}})
                continue
            except (OSError, ValueError) as exc:
                self._move(
                    path, self.failed, {"error": {"code": "unreadable", "message": str(exc)}}
                )
                continue
            self._move(path, self.done, result)
        return handled

    def _infer(self, model: str | None, path: Path) -> dict[str, Any]:
        if model is None:
            names = [m["model"] for m in self.agent.model_names()]
            if len(names) != 1:
                raise InferenceRefused(
                    400, "which_model", "put the file in a folder named after its model"
                )
            model = names[0]
        workflow = None
        if path.suffix == ".npy":
            import numpy as np

            inputs = np.load(path, allow_pickle=False)
        else:
            inputs, workflow = _split_body(json.loads(path.read_text()))
        return self.agent.infer(model, inputs, workflow_fields=workflow)

    def _move(self, path: Path, folder: Path, result: dict[str, Any]) -> None:
        target = folder / path.name
        os.replace(path, target)
        (folder / (path.stem + ".result.json")).write_text(json.dumps(result, indent=2))

    def loop(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.exception("drop folder scan failed")
            stop.wait(interval_s)
