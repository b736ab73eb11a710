"""gateway.loadgen against a small fake telemetry server that checks what the real one checks
(the device signature, the gzip body, the batch) and answers per the telemetry contract.

The fake server records every (epoch, sequence) it decoded, so each test can prove that the
sender lost nothing and sent nothing it should not have, whatever the server did to it."""

import gzip
import json
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.loadgen import (
    TELEMETRY_PATH,
    FleetDevice,
    FleetFile,
    ServerConnection,
    TelemetrySender,
    main,
    sim_device_for,
)
from gateway.simulation import generate_history
from protocol import device_auth
from protocol.telemetry import TelemetryRejected, decode_batch, gunzip_limited

MAX_BODY = 20 * 1024 * 1024


class FakeTelemetryServer:
    """``POST /api/v1/device/telemetry`` as the contract describes it, with scripted faults.

    ``script`` holds what to do with the next requests: "ok", "503", "429", "400",
    "drop_before_read" (close without reading or answering), "drop_after_read" (store the
    batch, then close without answering). ``withhold(key)`` may keep an event out of the store
    (neither held nor refused: the sender must send it again).
    """

    def __init__(self, public_keys, *, max_events=5000, known_classes=None, withhold=None):
        self.public_keys = {d: device_auth.raw_public_key(k) for d, k in public_keys.items()}
        self.max_events = max_events
        self.known_classes = known_classes
        self.withhold = withhold
        self.script = deque()
        self.store = {}  # (device, epoch, sequence) -> event
        self.received = Counter()  # (epoch, sequence) -> times decoded as a valid event
        self.posted = Counter()  # (epoch, sequence) -> times in a body that was read
        self.rejected = set()
        self.batch_sizes = []
        self.statuses = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real server behind gunicorn

            def log_message(self, *args):
                pass

            def do_POST(self):
                with server.lock:
                    action = server.script.popleft() if server.script else "ok"
                if action == "drop_before_read":
                    self.close_connection = True
                    return
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    for item in json.loads(gzip.decompress(body))["events"]:
                        server.posted[(item["epoch"], item["sequence"])] += 1
                if action in ("503", "429"):
                    return self.answer(int(action), error("busy", "try later"), retry_after="0")
                if action == "400":
                    return self.answer(400, error("invalid_batch", "not a telemetry batch"))
                status, payload = server.judge(self, body)
                if action == "drop_after_read":
                    self.close_connection = True
                    return
                self.answer(status, payload)

            def answer(self, status, payload, retry_after=None):
                raw = json.dumps(payload).encode()
                server.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(raw)

        return Handler

    def judge(self, request, body):
        path, _, query = request.path.partition("?")
        headers = {name: request.headers.get(name, "") for name in device_auth.SIGNED_HEADERS}
        try:
            signed = device_auth.parse_signed_headers(headers)
            device_auth.check_freshness(signed, now=time.time())
            key = self.public_keys.get(signed.device_id)
            if key is None or path != TELEMETRY_PATH:
                raise device_auth.DeviceAuthError("bad_signature", "unknown device")
            device_auth.verify_signature(
                signed, public_key=key, method="POST", path=path, query=query, body=body
            )
        except device_auth.DeviceAuthError as exc:
            return 401, error(exc.code, exc.message)
        if request.headers.get("Content-Encoding") != "gzip":
            return 415, error("unsupported_media_type", "gzip expected")
        try:
            decoded = decode_batch(
                gunzip_limited(body, MAX_BODY),
                max_events=self.max_events,
                now=datetime.now(UTC),
                known_classes=self.known_classes,
            )
        except TelemetryRejected as exc:
            return exc.status, error(exc.code, exc.message)
        with self.lock:
            return 200, self._ingest(signed.device_id, decoded)

    def _ingest(self, device_id, decoded):
        epoch = decoded.epoch
        self.batch_sizes.append(len(decoded.events) + len(decoded.rejected))
        held, duplicates, accepted = set(), list(decoded.duplicates), 0
        rejected = [
            {"index": r.index, "sequence": None, "code": r.code, "reason": r.reason}
            for r in decoded.rejected
        ]
        for index, event in decoded.events:
            self.received[(epoch, event.sequence)] += 1
            key = (device_id, epoch, event.sequence)
            if self.withhold is not None and self.withhold(key):
                continue
            if key in self.store:
                duplicates.append(index)
            else:
                self.store[key] = event
                accepted += 1
            held.add(event.sequence)
        for rejection in decoded.rejected:
            self.rejected.add(rejection.index)
        return {
            "batch": "b-1" if accepted else None,
            "epoch": epoch,
            "events": len(decoded.events) + len(decoded.rejected) + len(decoded.duplicates),
            "accepted": accepted,
            "held": ranges(sorted(held)),
            "duplicates": duplicates,
            "rejected": rejected,
        }

    def stored(self):
        return {(epoch, sequence) for _, epoch, sequence in self.store}


def error(code, message):
    return {"error": {"code": code, "message": message, "fields": {}}}


def ranges(sequences):
    out = []
    for s in sequences:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


# --- fixtures -----------------------------------------------------------------------------------


def new_device(device_id="gw-load-01"):
    key = device_auth.generate_device_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return FleetDevice(device_id=device_id, private_key_pem=pem), key


def generated(device, count, *, batch_size=500):
    """(epoch, events) batches for ``count`` events ending before now."""
    sim = sim_device_for(device)
    start = datetime.now(UTC) - timedelta(hours=2)
    return list(generate_history(sim, start, batch_size=batch_size, max_events=count))


def keys_of(batches):
    return {(epoch.epoch, e.sequence) for epoch, events in batches for e in events}


def sender_for(server, device, key, sleeps=None, **options):
    sender = TelemetrySender(
        device_id=device.device_id,
        private_key=key,
        connection=ServerConnection(server.url, timeout=5),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **options,
    )
    return sender


def fill(sender, batches):
    for epoch, events in batches:
        sender.enqueue(epoch, events)


@pytest.fixture
def device():
    return new_device()


# --- the tests ----------------------------------------------------------------------------------


def test_every_event_is_posted_once_signed_and_gzipped_and_the_queue_empties(device):
    fleet_device, key = device
    batches = generated(fleet_device, 1200)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        sender = sender_for(server, fleet_device, key, batch_size=500)
        fill(sender, batches)
        sender.prepare()
        stats = sender.run()
    assert server.stored() == keys_of(batches)
    assert set(server.received.values()) == {1}
    assert server.batch_sizes == [500, 500, 200]
    assert (stats.events, stats.accepted, stats.held, stats.requests) == (1200, 1200, 1200, 3)
    assert (stats.unsent, stats.http_errors, stats.duplicates) == (0, 0, 0)
    assert len(stats.latencies_ms) == 3
    assert not sender.queue


def test_the_sender_drops_exactly_the_held_and_refused_events_and_resends_the_rest(device):
    fleet_device, key = device
    batches = generated(fleet_device, 900, batch_size=300)
    events = [e for _, b in batches for e in b]
    refused = {
        e.sequence
        for e in events
        if getattr(e, "predicted_class", None) == "wet"  # not a class the server knows
    }
    assert refused
    seen = set()

    def withhold_odd_once(key):  # odd sequences are kept out of the store the first time
        if key[2] % 2 and key not in seen:
            seen.add(key)
            return True
        return False

    known = {"ok", "dent", "scratch", "crushed"}
    server_keys = {fleet_device.device_id: key.public_key()}
    with FakeTelemetryServer(
        server_keys, known_classes=known, withhold=withhold_odd_once
    ) as server:
        sender = sender_for(server, fleet_device, key, batch_size=300)
        fill(sender, batches)
        stats = sender.run()
    epoch = batches[0][0].epoch
    all_keys = keys_of(batches)
    refused_keys = {(epoch, s) for s in refused}
    assert server.stored() == all_keys - refused_keys
    # Refused events went once (refusals are final); odd ones twice (withheld once); even once.
    for epoch_id, sequence in all_keys - refused_keys:
        assert server.posted[(epoch_id, sequence)] == (2 if sequence % 2 else 1), sequence
    assert all(server.posted[k] == 1 for k in refused_keys)
    assert set(server.posted) == all_keys
    assert stats.rejected == len(refused)
    assert stats.held == len(all_keys) - len(refused)
    assert stats.unsent == 0
    assert stats.requests == 6  # each batch twice: once whole, once its withheld odd half


def test_503_and_429_are_retried_with_backoff_without_losing_or_repeating_events(device):
    fleet_device, key = device
    batches = generated(fleet_device, 700)
    sleeps = []
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        server.script.extend(["503", "429", "ok", "503"])
        sender = sender_for(server, fleet_device, key, sleeps=sleeps, batch_size=500)
        fill(sender, batches)
        stats = sender.run()
    assert server.stored() == keys_of(batches)
    assert set(server.received.values()) == {1}
    assert (stats.requests, stats.http_errors, stats.retries) == (5, 3, 3)
    # 50 ms doubling per attempt of a batch, with jitter of -50% to +50%.
    assert len(sleeps) == 3
    assert 0.025 <= sleeps[0] <= 0.075
    assert 0.05 <= sleeps[1] <= 0.15
    assert 0.025 <= sleeps[2] <= 0.075  # the next batch starts again from the first step
    assert stats.unsent == 0


def test_a_dropped_connection_is_retried_and_a_lost_answer_comes_back_as_held(device):
    fleet_device, key = device
    batches = generated(fleet_device, 600, batch_size=300)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        # The first request never arrives; the second arrives but its answer is lost.
        server.script.extend(["drop_before_read", "drop_after_read"])
        sender = sender_for(server, fleet_device, key, batch_size=300)
        fill(sender, batches)
        stats = sender.run()
    assert server.stored() == keys_of(batches)
    first = {(e.epoch, e.sequence) for e in batches[0][1]}
    assert {k for k, n in server.received.items() if n == 2} == first
    assert stats.network_errors == 2
    assert stats.duplicates == 300  # the repeat of the batch whose answer was lost
    assert (stats.held, stats.accepted, stats.unsent) == (600, 300, 0)


def test_413_too_many_events_halves_the_batch_until_it_fits(device):
    fleet_device, key = device
    batches = generated(fleet_device, 1000)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}, max_events=100) as server:
        sender = sender_for(server, fleet_device, key, batch_size=500)
        fill(sender, batches)
        stats = sender.run()
    assert server.stored() == keys_of(batches)
    assert set(server.received.values()) == {1}
    assert (stats.splits, sender.batch_size) == (3, 62)  # 500 -> 250 -> 125 -> 62
    assert server.statuses.count(413) == 3
    assert max(server.batch_sizes) == 62
    assert stats.unsent == 0


def test_replay_mode_sends_the_chosen_batches_twice_and_counts_the_duplicates(device):
    fleet_device, key = device
    batches = generated(fleet_device, 1000, batch_size=100)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        sender = sender_for(server, fleet_device, key, batch_size=100, replay_fraction=0.5)
        fill(sender, batches)
        stats = sender.run()
    assert server.stored() == keys_of(batches)
    twice = [k for k, n in server.received.items() if n == 2]
    assert 0 < stats.replays < 10
    assert len(twice) == 100 * stats.replays
    assert set(server.received.values()) == {1, 2}
    assert stats.duplicates == 100 * stats.replays
    assert stats.requests == 10 + stats.replays
    assert (stats.accepted, stats.held) == (1000, 1000)


def test_a_batch_refused_as_malformed_is_dropped_and_the_next_is_sent(device):
    fleet_device, key = device
    batches = generated(fleet_device, 700)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        server.script.append("400")
        sender = sender_for(server, fleet_device, key, batch_size=500)
        fill(sender, batches)
        stats = sender.run()
    assert (stats.failed, stats.held, stats.unsent, stats.requests) == (500, 200, 0, 2)
    assert server.stored() == {(e.epoch, e.sequence) for e in batches[1][1]}
    assert set(server.posted.values()) == {1}


def test_a_device_the_server_does_not_know_stops_with_its_events_unsent(device):
    fleet_device, key = device
    stranger, _ = new_device("gw-stranger")
    batches = generated(fleet_device, 300)
    with FakeTelemetryServer({stranger.device_id: key.public_key()}) as server:
        sender = sender_for(server, fleet_device, key)
        fill(sender, batches)
        stats = sender.run()
    assert server.statuses == [401]
    assert (stats.unsent, stats.held, stats.requests) == (300, 0, 1)
    assert sender.stopped


def test_a_server_that_keeps_failing_is_given_up_on_and_the_events_are_kept(device):
    fleet_device, key = device
    batches = generated(fleet_device, 200)
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        server.script.extend(["503"] * 10)
        sender = sender_for(server, fleet_device, key, max_attempts=4)
        fill(sender, batches)
        stats = sender.run()
    assert (stats.requests, stats.retries, stats.unsent) == (4, 3, 200)
    assert not server.store


def test_the_cli_spreads_devices_over_processes_and_prints_one_summary(tmp_path, capsys):
    devices = [new_device(f"gw-cli-{i}") for i in range(3)]
    fleet_path = tmp_path / "fleet.json"
    with FakeTelemetryServer({d.device_id: k.public_key() for d, k in devices}) as server:
        FleetFile(server=server.url, devices=tuple(d for d, _ in devices)).write(fleet_path)
        argv = ["--fleet", str(fleet_path), "--processes", "2", "--batch-size", "250"]
        code = main([*argv, "--events-per-device", "600", "--replay-fraction", "0.25"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert len(out) == 1
    summary = json.loads(out[0])
    assert summary["processes"] == 2
    assert summary["events_generated"] == 1800
    assert summary["accepted"] == summary["held"] == 1800
    assert summary["replays"] > 0
    # A replayed batch is 250 or (the last of a device) 100 events, every one a duplicate.
    assert 100 * summary["replays"] <= summary["duplicates_reported"] <= 250 * summary["replays"]
    assert summary["requests"] == 9 + summary["replays"]  # 600 = 250 + 250 + 100 per device
    assert summary["http_errors"] == summary["unsent"] == 0
    assert summary["latency_p50_ms"] <= summary["latency_p95_ms"]
    assert summary["events_per_s"] > 0 and summary["client_cpu_s"] > 0
    assert len(server.store) == 1800
    assert {device_id for device_id, _, _ in server.store} == {d.device_id for d, _ in devices}


def test_history_mode_injects_drift_and_throttling_in_their_minutes_only():
    from datetime import UTC, datetime

    from gateway import loadgen
    from protocol.telemetry import HealthEvent, InferenceEvent

    device = loadgen.FleetDevice(device_id="dev-hist", private_key_pem="")
    options = loadgen.RunOptions(
        history_minutes=60,
        inferences_per_minute=120,
        health_interval_s=10,
        drift=(20, 30),
        throttling=(40, 50),
    )
    now = datetime(2026, 12, 1, 12, 7, 30, tzinfo=UTC)
    start = loadgen.history_start(now, 60)
    assert start == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    events = [e for _, batch in loadgen._generate(device, options, now) for e in batch]
    assert min(e.timestamp for e in events) >= start and max(e.timestamp for e in events) < now

    def minute(event):
        return (event.timestamp - start).total_seconds() / 60

    first = loadgen.default_model().classes[0]
    inference = [e for e in events if isinstance(e, InferenceEvent)]
    drifted = [e for e in inference if 20 <= minute(e) < 30]
    quiet = [e for e in inference if minute(e) < 20 or 30 <= minute(e) < 40]
    share = lambda rows: sum(e.predicted_class == first for e in rows) / len(rows)  # noqa: E731
    assert share(drifted) > share(quiet) + 0.25
    mean = lambda rows: sum(e.confidence for e in rows) / len(rows)  # noqa: E731
    assert mean(drifted) < mean(quiet) - 0.1
    health = [e for e in events if isinstance(e, HealthEvent)]
    assert all(e.throttled == (40 <= minute(e) < 50) for e in health)


@pytest.mark.parametrize("text", ["30", "a:b", "50:30", "-1:5"])
def test_an_injection_span_must_be_start_before_end(text):
    from gateway import loadgen

    with pytest.raises(SystemExit):
        loadgen.main(["--fleet", "x.json", "--drift", text])
