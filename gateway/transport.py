"""Signed HTTP to the device API over one keep-alive connection (standard library only).

`ServerConnection` is one ``http.client`` connection, reopened after any network error; it is
not thread-safe, so each of the agent's loops (desired-state poller, telemetry sender) holds
its own. `SignedTransport` signs every request with the device key (protocol.device_auth),
a fresh nonce each time, also for every range request of a resumed download.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import device_auth

__all__ = ["NETWORK_ERRORS", "Answer", "ServerConnection", "SignedTransport", "StaleConnection"]

NETWORK_ERRORS = (OSError, http.client.HTTPException)
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def error_code(self) -> str:
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("code") or "")
        return ""

    def error_message(self) -> str:
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("message") or "")
        return self.body[:200].decode(errors="replace")


class StaleConnection(ConnectionError):
    """A kept-alive connection was closed by the server before it answered."""


class ServerConnection:
    """One keep-alive connection to the server, reopened after any network error."""

    def __init__(self, server: str, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"the server must be an http(s):// URL, got {server!r}")
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port
        self.prefix = parsed.path.rstrip("/")
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            self._connection = cls(self.host, self.port, timeout=self.timeout)
        return self._connection

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        sink: Callable[[http.client.HTTPResponse], bytes] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send and read the answer (``sink`` may consume the body itself); raises
        OSError/HTTPException on a network error after closing the connection.

        A kept-alive connection the server closed meanwhile (gunicorn drops idle ones after
        a few seconds) fails before any answer: that is raised as `StaleConnection`, which
        `SignedTransport` answers by signing the request afresh (a new nonce: the server may
        have seen the first) and sending it once more on a new connection."""
        reused = self._connection is not None
        try:
            return self._request_once(method, path, body, headers, sink)
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            if reused:
                raise StaleConnection(str(exc)) from exc
            raise

    def _request_once(self, method, path, body, headers, sink):
        connection = self._open()
        try:
            connection.request(method, self.prefix + path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            raw = sink(response) if sink is not None and response.status in (200, 206) else None
            if raw is None:
                raw = response.read()
        except NETWORK_ERRORS:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, answer_headers, raw

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        return self.request("POST", path, body, headers)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class SignedTransport:
    """Signed requests as one device; one connection, so one thread at a time."""

    def __init__(
        self, *, server: str, device_id: str, private_key: Ed25519PrivateKey, timeout: float = 30.0
    ) -> None:
        self.connection = ServerConnection(server, timeout=timeout)
        self.device_id = device_id
        self.private_key = private_key

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        parsed = urllib.parse.urlsplit(path)
        return device_auth.sign_request(
            private_key=self.private_key,
            device_id=self.device_id,
            method=method,
            path=self.connection.prefix + parsed.path,
            query=parsed.query,
            body=body,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        for attempt in (1, 2):
            signed = self._headers(method, path, body)
            signed.update(headers or {})
            try:
                status, answer_headers, raw = self.connection.request(method, path, body, signed)
            except StaleConnection:
                if attempt == 2:
                    raise
                continue
            return Answer(status, answer_headers, raw)
        raise AssertionError("unreachable")

    def call_json(self, method: str, path: str, payload: Any = None) -> Answer:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body else {}
        return self.call(method, path, body=body, headers=headers)

    def download(
        self, path: str, target: BinaryIO, *, offset: int = 0, if_range: str | None = None
    ) -> Answer:
        """GET ``path`` into ``target`` (a file open for writing at ``offset``), resuming
        from ``offset`` with a Range request. The answer's body is empty: the bytes went to
        ``target``; a 200 means the whole file came (``target`` was truncated first)."""

        wrote = False

        def sink(response: http.client.HTTPResponse) -> bytes:
            nonlocal wrote
            wrote = True
            if response.status == 200:
                target.seek(0)
                target.truncate()
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                target.write(chunk)
            target.flush()
            return b""

        for attempt in (1, 2):
            headers = self._headers("GET", path, b"")
            if offset > 0:
                headers["Range"] = f"bytes={offset}-"
                if if_range:
                    headers["If-Range"] = if_range
            try:
                status, answer_headers, raw = self.connection.request(
                    "GET", path, b"", headers, sink=sink
                )
            except StaleConnection:
                if attempt == 2 or wrote:  # bytes arrived: resume from the file's size later
                    raise
                continue
            return Answer(status, answer_headers, raw)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()
