"""Evidence samples on the gateway: the sampler's rates and daily cap (kept across a restart,
reset at UTC midnight), a queue that is encrypted at rest and bounded, an uploader that settles
each answer class as the contract says, a PNG a decoder accepts, and the agent and simulator
queueing and uploading samples through a (fake, signature-checking) server."""

from __future__ import annotations

import gzip
import json
import math
import random
import sqlite3
import struct
import threading
import time
import zlib
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.agent import Agent, Serving
from gateway.config import AgentConfig
from gateway.evidence import (
    EVIDENCE_FILE,
    KEY_FILE,
    EvidencePolicy,
    EvidenceQueue,
    EvidenceSampler,
    EvidenceUploader,
    build_sample,
    encode_png,
    grayscale_image,
    read_status,
)
from gateway.runner import Prediction
from gateway.transport import Answer
from protocol import device_auth
from protocol.evidence import (
    EVIDENCE_PATH,
    MAX_JSON_BYTES,
    EvidenceRef,
    check_sample,
    parse_reference,
)
from protocol.telemetry import ModelRef

EPOCH = "e" * 32
DAY = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 12, 3, 0, 0, tzinfo=UTC).timestamp()
DIGIT = [[(3 * i) % 17 for i in range(64)]]  # the digits model's [1, 64], values 0..16


class Clock:
    def __init__(self, now: float = DAY) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ref(sequence: int, reason: str = "low_confidence") -> EvidenceRef:
    return EvidenceRef(epoch=EPOCH, sequence=sequence, reason=reason)


def policy(**values) -> EvidencePolicy:
    base = {
        "review_threshold": 0.6,
        "evidence_sampling_rate": 1.0,
        "evidence_audit_rate": 0.0,
        "evidence_daily_cap": 1000,
        "image_evidence": True,
    }
    return EvidencePolicy.from_policy({**base, **values})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(tmp_path, clock):
    q = EvidenceQueue(tmp_path / EVIDENCE_FILE, clock=clock)
    yield q
    q.close()


def enqueue(q: EvidenceQueue, sequence: int, body: bytes = b'{"x": 1}', cap: int = 1000) -> bool:
    return q.enqueue(ref(sequence), media_type="application/json", body=body, daily_cap=cap)


# --- the sampler --------------------------------------------------------------------------------


class NoLedger:
    def today_count(self) -> int:
        return 0


def _within_binomial(observed: int, trials: int, p: float) -> None:
    """``observed`` within 5 standard deviations of Binomial(trials, p) (a false alarm about
    once in 3.5 million runs; the seeded RNG makes it deterministic anyway)."""
    mean = trials * p
    sd = math.sqrt(trials * p * (1 - p))
    assert abs(observed - mean) <= 5 * sd + 1, (observed, mean, sd)


def test_the_sampler_sends_low_confidence_and_audit_cases_at_the_policys_rates():
    sampler = EvidenceSampler(NoLedger(), rng=random.Random(17))
    rule = policy(evidence_sampling_rate=0.3, evidence_audit_rate=0.05)
    cases = [0.4 if i % 2 else 0.9 for i in range(20_000)]  # half under the 0.6 threshold
    reasons = Counter((c < 0.6, sampler.decide(confidence=c, policy=rule)) for c in cases)
    low = sum(1 for c in cases if c < 0.6)
    high = len(cases) - low
    assert reasons[(False, "low_confidence")] == 0  # a confident case is never "low"
    _within_binomial(reasons[(True, "low_confidence")], low, 0.3)
    # Audit: a share of every case not already sent as low-confidence.
    _within_binomial(reasons[(False, "audit")], high, 0.05)
    _within_binomial(reasons[(True, "audit")], low, 0.7 * 0.05)
    # The same seed gives the same decisions.
    again = EvidenceSampler(NoLedger(), rng=random.Random(17))
    first = [again.decide(confidence=c, policy=rule) for c in cases[:200]]
    replay = EvidenceSampler(NoLedger(), rng=random.Random(17))
    assert first == [replay.decide(confidence=c, policy=rule) for c in cases[:200]]


def test_no_sample_at_cap_zero_nor_without_an_evidence_policy():
    sampler = EvidenceSampler(NoLedger(), rng=random.Random(1))
    everything = policy(evidence_sampling_rate=1.0, evidence_audit_rate=1.0, evidence_daily_cap=0)
    assert {sampler.decide(confidence=0.1, policy=everything) for _ in range(100)} == {None}
    assert sampler.capped == 100
    # An older server's policy has no evidence keys: nothing leaves.
    bare = EvidencePolicy.from_policy({"review_threshold": 0.7})
    assert {sampler.decide(confidence=0.1, policy=bare) for _ in range(100)} == {None}
    # Malformed values are read as "nothing".
    odd = EvidencePolicy.from_policy(
        {"evidence_sampling_rate": "lots", "evidence_daily_cap": "x", "image_evidence": "yes"}
    )
    assert (odd.sampling_rate, odd.daily_cap, odd.image_evidence) == (0.0, 0, False)


def test_the_daily_cap_holds_across_a_restart_and_resets_at_utc_midnight(tmp_path):
    clock = Clock(MIDNIGHT - 60)  # 23:59 UTC
    path = tmp_path / EVIDENCE_FILE
    q = EvidenceQueue(path, clock=clock)
    sampler = EvidenceSampler(q, rng=random.Random(2))
    rule = policy(evidence_daily_cap=3)
    sent = 0
    for sequence in range(10):
        reason = sampler.decide(confidence=0.1, policy=rule)
        if reason is not None:
            assert q.enqueue(
                ref(sequence, reason), media_type="application/json", body=b"{}", daily_cap=3
            )
            sent += 1
    assert sent == 3 and q.today_count() == 3 and sampler.capped == 7
    q.close()

    again = EvidenceQueue(path, clock=clock)  # a restart the same UTC day: still used up
    assert again.today_count() == 3
    assert EvidenceSampler(again).decide(confidence=0.1, policy=rule) is None
    assert enqueue(again, 50, cap=3) is False  # the queue enforces it too (a race)
    again.close()

    clock.now = MIDNIGHT + 1  # 00:00:01 UTC the next day
    third = EvidenceQueue(path, clock=clock)
    assert third.today_count() == 0
    assert EvidenceSampler(third).decide(confidence=0.1, policy=rule) == "low_confidence"
    assert enqueue(third, 51, cap=3) is True
    assert third.today_count() == 1 and third.counts().queued == 4
    third.close()


# --- the queue: encrypted at rest, bounded -----------------------------------------------------


def _file_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob(EVIDENCE_FILE + "*"))


def test_samples_are_encrypted_at_rest_and_decrypt_for_upload(tmp_path, queue):
    secret = b'{"inputs": "PATIENT-NAME-Jane-Doe-4711", "confidence": 0.41}'
    png = build_sample(
        inputs=DIGIT,
        predicted_class="3",
        confidence=0.4,
        model_name="digits",
        model_version="1.0.0",
        timestamp=datetime.now(UTC),
        image_allowed=True,
    ).body
    assert enqueue(queue, 1, secret)
    assert queue.enqueue(ref(2), media_type="image/png", body=png, daily_cap=1000)
    stored = _file_bytes(tmp_path)  # the database and its WAL, as they are on disk
    assert len(stored) > 0
    assert b"PATIENT-NAME" not in stored and b"Jane-Doe" not in stored
    assert secret not in stored and png[8:40] not in stored and zlib.compress(png) not in stored
    assert b"IHDR" not in stored and b"IDAT" not in stored  # not even the PNG's chunk names

    key = tmp_path / KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    first = queue.peek()
    assert (first.ref, first.media_type, first.body) == (ref(1), "application/json", secret)
    queue.settle(first.id)
    second = queue.peek()
    assert (second.ref.sequence, second.media_type, second.body) == (2, "image/png", png)
    # The key is made once: a restart reads the same key and the samples still decrypt.
    before = key.read_bytes()
    queue.close()
    again = EvidenceQueue(tmp_path / EVIDENCE_FILE)
    assert key.read_bytes() == before and again.peek().body == png
    again.close()


def test_an_altered_or_moved_row_is_refused_on_read_and_counted(tmp_path, queue):
    for sequence in (1, 2, 3):
        assert enqueue(queue, sequence, b'{"n": %d}' % sequence)
    with sqlite3.connect(tmp_path / EVIDENCE_FILE) as db:
        (sealed,) = db.execute("SELECT sealed FROM samples WHERE sequence = 1").fetchone()
        flipped = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 1])
        db.execute("UPDATE samples SET sealed = ? WHERE sequence = 1", (flipped,))
        # A body moved to another event: the associated data no longer matches.
        db.execute("UPDATE samples SET sequence = 99 WHERE sequence = 2")
    sample = queue.peek()  # neither raises: both are dropped, the third is next
    assert sample.ref.sequence == 3 and sample.body == b'{"n": 3}'
    counts = queue.counts()
    assert (counts.unreadable, counts.queued, counts.sent) == (2, 1, 0)


def test_a_corrupt_key_file_is_set_aside_and_what_it_sealed_is_dropped(tmp_path, queue):
    assert enqueue(queue, 1)
    queue.close()
    (tmp_path / KEY_FILE).write_bytes(b"short")
    again = EvidenceQueue(tmp_path / EVIDENCE_FILE)
    assert len((tmp_path / KEY_FILE).read_bytes()) == 32
    assert list(tmp_path.glob(KEY_FILE + ".bad-*"))
    assert again.peek() is None and again.counts().unreadable == 1
    assert enqueue(again, 2) and again.peek().body == b'{"x": 1}'  # the new key works
    again.close()


def test_the_queue_is_bounded_and_drops_the_oldest_counting_the_loss(tmp_path, clock):
    q = EvidenceQueue(tmp_path / EVIDENCE_FILE, max_samples=3, clock=clock)
    for sequence in range(5):
        assert enqueue(q, sequence)
    counts = q.counts()
    assert (counts.queued, counts.dropped, counts.enqueued) == (3, 2, 5)
    assert q.peek().ref.sequence == 2  # 0 and 1 went first
    q.close()

    body = b"{" + b" " * 1000 + b"}"
    sealed = len(body) + 12 + 16  # nonce and tag
    small = EvidenceQueue(tmp_path / "bytes.sqlite3", max_bytes=2 * sealed + 10, clock=clock)
    for sequence in range(4):
        assert enqueue(small, sequence, body)
    counts = small.counts()
    assert (counts.queued, counts.bytes, counts.dropped) == (2, 2 * sealed, 2)
    assert small.peek().ref.sequence == 2
    assert enqueue(small, 9, b"{" + b" " * 5000 + b"}") is False  # larger than the whole cap
    assert small.counts().dropped == 3
    # One sample per event: a second one for the same (epoch, sequence) is not queued.
    assert enqueue(small, 3) is False
    small.close()


# --- the sample's bytes -------------------------------------------------------------------------


def _png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit grayscale PNG by hand: check its signature and chunk CRCs."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, []
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks.append((kind, data))
        at += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    stride = width + 1
    assert len(raw) == stride * height
    rows = [raw[r * stride : (r + 1) * stride] for r in range(height)]
    assert {row[0] for row in rows} == {0}  # filter "none"
    return width, height, [row[1:] for row in rows]


def test_the_png_encoder_makes_a_valid_upscaled_grayscale_png():
    rows = [[0, 128, 255], [10, 20, 30]]
    png = encode_png(rows, scale=4)
    width, height, pixels = _png_pixels(png)
    assert (width, height) == (12, 8)
    assert pixels[0] == bytes([0] * 4 + [128] * 4 + [255] * 4) == pixels[3]
    assert pixels[4] == bytes([10] * 4 + [20] * 4 + [30] * 4) == pixels[7]
    assert encode_png(rows, scale=4) == png  # deterministic
    with pytest.raises(ValueError):
        encode_png([[1, 2], [3]])
    try:
        from PIL import Image
    except ImportError:
        return
    import io

    image = Image.open(io.BytesIO(png))
    image.load()
    assert (image.size, image.mode, image.getpixel((5, 0)), image.getpixel((11, 7))) == (
        (12, 8),
        "L",
        128,
        30,
    )


@pytest.mark.parametrize(
    ("inputs", "side"),
    [
        (DIGIT, 8),  # [1, 64]
        ([[list(DIGIT[0][r * 8 : r * 8 + 8]) for r in range(8)]], 8),  # [1, 8, 8]
        ([[[v] for v in DIGIT[0][r * 8 : r * 8 + 8]] for r in range(8)], 8),  # [8, 8, 1]
        ({"X": DIGIT}, 8),  # one named input
        ([[0.5] * 28 for _ in range(28)], 28),
    ],
)
def test_image_like_inputs_are_read_as_grayscale(inputs, side):
    rows = grayscale_image(inputs)
    assert len(rows) == side and {len(r) for r in rows} == {side}
    if side == 8:
        assert rows[0][:3] == [0, round(3 * 255 / 16), round(6 * 255 / 16)]  # 4-bit scaled
    else:
        assert rows[0][0] == 128  # [0, 1] scaled by 255


@pytest.mark.parametrize(
    "inputs",
    [
        [[0.1, 0.2, 0.3, 0.4]],  # tabular: too small for an image
        [[1.0] * 63],  # not a square
        [[[[1] * 8] * 8] * 3],  # three channels
        [[-1] + [1] * 63],  # negative values
        [[300] * 64],  # above 8 bits
        {"a": DIGIT, "b": DIGIT},  # two inputs
        [[1, 2], [3]],  # ragged
        None,
        "text",
    ],
)
def test_other_inputs_are_not_images(inputs):
    assert grayscale_image(inputs) is None


def _sample(inputs, *, image_allowed):
    return build_sample(
        inputs=inputs,
        predicted_class="7",
        confidence=0.42,
        model_name="digits",
        model_version="1.0.0",
        timestamp=datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC),
        image_allowed=image_allowed,
    )


def test_an_image_goes_as_png_only_where_the_policy_allows_images():
    image = _sample(DIGIT, image_allowed=True)
    assert image.media_type == "image/png"
    assert check_sample(content_type=image.media_type, body=image.body) == "image/png"
    width, height, pixels = _png_pixels(image.body)
    assert (width, height) == (64, 64) and pixels[0][8] == round(3 * 255 / 16)

    plain = _sample(DIGIT, image_allowed=False)
    assert plain.media_type == "application/json"
    assert check_sample(content_type=plain.media_type, body=plain.body) == "application/json"
    assert json.loads(plain.body) == {
        "inputs": DIGIT,
        "predicted_class": "7",
        "confidence": 0.42,
        "model": {"name": "digits", "version": "1.0.0"},
        "timestamp": "2026-12-02T01:02:03+00:00",
    }
    # Not image-like: JSON even where images are allowed.
    assert _sample([[0.1, 0.2, 0.3, 0.4]], image_allowed=True).media_type == "application/json"


def test_inputs_too_large_for_a_json_sample_are_summarised():
    import numpy as np

    big = np.arange(3 * 224 * 224, dtype=np.float32).reshape(1, 3, 224, 224) / 1000.0
    sample = _sample({"image": big}, image_allowed=True)  # three channels: not grayscale
    assert sample.media_type == "application/json" and len(sample.body) <= MAX_JSON_BYTES
    data = json.loads(sample.body)
    assert "inputs" not in data
    summary = data["inputs_summary"]["image"]
    assert summary["shape"] == [1, 3, 224, 224] and summary["count"] == 3 * 224 * 224
    assert summary["min"] == 0.0 and summary["max"] == pytest.approx(150.527, abs=1e-3)
    # Nested too deep for the server's limit: summarised too, never refused there.
    deep = [[[[[[[[[1.0]]]]]]]]]
    data = json.loads(_sample(deep, image_allowed=False).body)
    assert data["inputs_summary"]["input"]["shape"] == [1] * 9
    check_sample(content_type="application/json", body=_sample(deep, image_allowed=False).body)


# --- the uploader -------------------------------------------------------------------------------


def _error(status: int, code: str, retry_after: str | None = None) -> Answer:
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = json.dumps({"error": {"code": code, "message": f"{code}!"}}).encode()
    return Answer(status, headers, body)


def _stored(status: int = 201) -> Answer:
    return Answer(status, {}, json.dumps({"evidence": "u-1", "status": "linked"}).encode())


class FakeTransport:
    """SignedTransport's ``call``: records the requests, answers from a script."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, bytes, dict]] = []

    def call(self, method, path, *, body=b"", headers=None):
        self.calls.append((method, path, body, dict(headers or {})))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _uploader(queue, clock, *answers, ready=None):
    transport = FakeTransport(*answers)
    return EvidenceUploader(
        queue, transport, ready=ready, clock=clock, rng=random.Random(0)
    ), transport


def test_a_stored_sample_leaves_the_queue_and_the_request_names_its_event(queue, clock):
    assert queue.enqueue(ref(7, "audit"), media_type="image/png", body=b"PNG", daily_cap=10)
    assert enqueue(queue, 8)
    uploader, transport = _uploader(queue, clock, _stored(201), _stored(200))
    assert uploader.drain() == 2
    (method, path, body, headers), second = transport.calls
    assert method == "POST" and body == b"PNG" and headers == {"Content-Type": "image/png"}
    route, _, query = path.partition("?")
    assert route == EVIDENCE_PATH
    assert parse_reference(query) == ref(7, "audit")
    assert query == f"epoch={EPOCH}&sequence=7&reason=audit"
    assert second[1].endswith("sequence=8&reason=low_confidence")
    counts = queue.counts()
    assert (counts.queued, counts.sent, counts.refused) == (0, 2, {})
    assert uploader.drain_once() == "empty"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (_error(400, "invalid_reference"), "invalid_reference"),
        (_error(403, "evidence_disabled"), "evidence_disabled"),
        (_error(403, "image_evidence_disabled"), "image_evidence_disabled"),
        (_error(404, "event_not_found"), "event_not_found"),
        (_error(409, "evidence_conflict"), "evidence_conflict"),
        (_error(413, "too_large"), "too_large"),
        (Answer(413, {}, b"<html>Request Entity Too Large</html>"), "413"),  # a proxy's
        (_error(415, "unsupported_media_type"), "unsupported_media_type"),
        (_error(422, "content_mismatch"), "content_mismatch"),
        (_error(422, "invalid_image"), "invalid_image"),
        (_error(422, "invalid_json"), "invalid_json"),
    ],
)
def test_a_refusal_that_blames_the_sample_deletes_it_and_counts_it_by_code(
    queue, clock, answer, code
):
    assert enqueue(queue, 1)
    assert enqueue(queue, 2)
    uploader, transport = _uploader(queue, clock, answer, _stored())
    assert uploader.drain_once() == "refused"
    assert uploader.drain_once() == "sent"  # the next one goes at once: no backoff
    counts = queue.counts()
    assert (counts.queued, counts.sent, counts.refused) == (0, 1, {code: 1})
    assert len(transport.calls) == 2


@pytest.mark.parametrize(
    ("answer", "floor_s"),
    [
        (OSError("connection refused"), 0.0),
        (_error(503, "unavailable"), 0.0),
        (_error(500, "server_error"), 0.0),
        (_error(429, "rate_limited", retry_after="30"), 30.0),
        (_error(404, "not_found"), 60.0),  # no such endpoint (yet): not the sample's fault
        (_error(401, "bad_signature"), 60.0),
        (_error(403, "forbidden"), 60.0),
    ],
)
def test_transient_answers_keep_the_sample_and_back_off(queue, clock, answer, floor_s):
    assert enqueue(queue, 1)
    uploader, transport = _uploader(queue, clock, answer, _stored())
    assert uploader.drain_once() == "failed"
    assert queue.counts().queued == 1 and queue.counts().refused == {}
    wait = uploader.wait_s()
    assert wait > 0 and wait >= floor_s
    assert uploader.drain_once() == "waiting" and len(transport.calls) == 1
    assert uploader.status()["last_error"]
    clock.now += wait + 0.001
    assert uploader.drain_once() == "sent"
    assert queue.counts().sent == 1 and uploader.status()["last_error"] == ""


def test_the_servers_daily_cap_holds_every_sample_until_retry_after_or_midnight(queue, clock):
    for sequence in (1, 2):
        assert enqueue(queue, sequence)
    uploader, transport = _uploader(
        queue,
        clock,
        _error(429, "evidence_cap", retry_after="120"),
        _stored(),
        _error(429, "evidence_cap"),
        _stored(),
    )
    assert uploader.drain_once() == "capped"
    clock.now += 119
    assert uploader.drain() == 0 and uploader.drain_once() == "capped"
    assert len(transport.calls) == 1 and queue.counts().queued == 2  # nothing deleted
    assert uploader.status()["held_until"] == datetime.fromtimestamp(DAY + 120, UTC).isoformat()
    clock.now += 2
    assert uploader.drain_once() == "sent"
    # Without Retry-After: held until the next UTC midnight.
    assert uploader.drain_once() == "capped"
    clock.now = MIDNIGHT - 1
    assert uploader.drain_once() == "capped"
    clock.now = MIDNIGHT
    assert uploader.drain_once() == "sent"
    assert queue.counts().sent == 2 and len(transport.calls) == 4


def test_when_the_cap_is_spent_samples_from_earlier_days_go_and_todays_wait(queue, clock):
    clock.now = DAY - 86_400  # yesterday, while the gateway was offline
    assert enqueue(queue, 1)
    clock.now = DAY
    assert enqueue(queue, 2)
    uploader, transport = _uploader(queue, clock, _error(429, "evidence_cap"), _stored())
    assert uploader.drain_once() == "capped"
    counts = queue.counts()
    assert (counts.queued, counts.dropped) == (1, 1)
    assert queue.head().sequence == 2  # today's case is next, not yesterday's backlog
    clock.now = MIDNIGHT
    assert uploader.drain_once() == "sent"
    assert transport.calls[-1][1].endswith("sequence=2&reason=low_confidence")


def test_a_sample_waits_while_its_event_is_not_accepted(queue, clock):
    assert enqueue(queue, 5)
    accepted = {"below": 5}
    uploader, transport = _uploader(
        queue, clock, _stored(), ready=lambda r: r.sequence < accepted["below"]
    )
    assert uploader.drain_once() == "holding" and transport.calls == []
    accepted["below"] = 6
    assert uploader.drain_once() == "sent"


# --- the agent and the simulator, against a fake server that checks signatures ------------------


class FakeServer:
    """Telemetry (every event held) and evidence (signature with the query checked, the
    sample checked as the server's contract says, stored per event) on a local port."""

    def __init__(self, device_id: str, public_key) -> None:
        self.device_id = device_id
        self.public_key = device_auth.raw_public_key(public_key)
        self.events: set[tuple[str, int]] = set()
        self.evidence: dict[tuple[str, int], tuple[str, str, bytes]] = {}
        self.evidence_before_event = 0
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
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, payload):
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                self.answer(404, {"error": {"code": "not_found", "message": "no"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path, _, query = self.path.partition("?")
                headers = {n: self.headers.get(n, "") for n in device_auth.SIGNED_HEADERS}
                try:
                    signed = device_auth.parse_signed_headers(headers)
                    device_auth.verify_signature(
                        signed,
                        public_key=server.public_key,
                        method="POST",
                        path=path,
                        query=query,
                        body=body,
                    )
                except device_auth.DeviceAuthError as exc:
                    return self.answer(401, {"error": {"code": exc.code, "message": "x"}})
                if path == "/api/v1/device/telemetry":
                    batch = json.loads(gzip.decompress(body))
                    epoch = batch["device_epoch"]["epoch"]
                    sequences = [e["sequence"] for e in batch["events"]]
                    with server.lock:
                        server.events.update((epoch, s) for s in sequences)
                    held = [[min(sequences), max(sequences)]] if sequences else []
                    return self.answer(200, {"epoch": epoch, "held": held, "rejected": []})
                if path == EVIDENCE_PATH:
                    reference = parse_reference(query)
                    media = check_sample(content_type=self.headers["Content-Type"], body=body)
                    key = (reference.epoch, reference.sequence)
                    with server.lock:
                        if key not in server.events:
                            server.evidence_before_event += 1
                        server.evidence[key] = (reference.reason, media, body)
                    return self.answer(201, {"evidence": "u", "status": "linked"})
                return self.answer(404, {"error": {"code": "not_found", "message": path}})

        return Handler


class FixedRunner:
    labels = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")

    def __init__(self, confidences):
        self.confidences = list(confidences)

    def predict(self, inputs):
        return Prediction("3", self.confidences.pop(0), (), 1.0, "1x64")

    def health_check(self):
        return self.predict(None)

    def close(self):
        pass


def _agent(tmp_path, server_url, device_id, key, clock=time.time) -> Agent:
    agent = Agent(
        tmp_path / "state",
        AgentConfig(listen=""),
        server=server_url,
        device_id=device_id,
        private_key=key,
        clock=clock,
        evidence_rng=random.Random(5),
    )
    return agent


def _serve(agent: Agent, runner) -> None:
    item = SimpleNamespace(model="digits", version="1.0.0", model_id=1, sha256="a" * 64)
    agent.serving["digits"] = Serving(
        item=item,
        runner=runner,
        manifest_ref=ModelRef(name="digits", version="1.0.0", sha256="a" * 64),
    )


def test_the_agent_samples_uploads_after_the_event_and_reports_its_evidence(tmp_path):
    key = device_auth.generate_device_key()
    with FakeServer("gw-ev-1", key.public_key()) as server:
        agent = _agent(tmp_path, server.url, "gw-ev-1", key)
        agent._apply_policy(
            {
                "review_threshold": 0.6,
                "evidence_sampling_rate": 1.0,
                "evidence_audit_rate": 0.0,
                "evidence_daily_cap": 3,
                "image_evidence": True,
                "site_kind": "dock",
                "telemetry_interval_s": 10,
            }
        )
        _serve(agent, FixedRunner([0.9, 0.3, 0.95, 0.2, 0.4, 0.1, 0.5]))
        answers = [agent.infer("digits", DIGIT) for _ in range(7)]
        low = [a["event"]["sequence"] for a in answers if a["needs_review"]]
        assert len(low) == 5
        status = agent.status()["evidence"]
        assert (status["queued"], status["today"], status["daily_cap"]) == (3, 3, 3)
        assert status["not_sent_over_cap"] == 2  # the cap held two low-confidence cases back

        assert agent.drain_evidence() == 0  # their events are still queued: held back
        assert server.evidence == {}
        assert agent.drain(flush=True) == 1
        assert agent.drain_evidence() == 3
        epoch = agent.queue.device_epoch.epoch
        assert set(server.evidence) == {(epoch, s) for s in low[:3]}
        assert server.evidence_before_event == 0
        reason, media, body = server.evidence[(epoch, low[0])]
        assert (reason, media) == ("low_confidence", "image/png")
        assert _png_pixels(body)[:2] == (64, 64)
        status = agent.status()["evidence"]
        assert (status["queued"], status["sent"], status["refused"]) == (0, 3, {})
        agent.queue.close()
        agent.evidence.close()
    # ``opshero-gateway status`` reads the same block from the state directory.
    (tmp_path / "state" / "desired.json").write_text(
        json.dumps({"policy": {"evidence_daily_cap": 3}})
    )
    block = read_status(tmp_path / "state")
    assert (block["sent"], block["queued"], block["today"], block["daily_cap"]) == (3, 0, 3, 3)


def test_a_clinic_without_image_evidence_sends_json_without_device_identifiers(tmp_path):
    key = device_auth.generate_device_key()
    with FakeServer("gw-clinic-7", key.public_key()) as server:
        agent = _agent(tmp_path, server.url, "gw-clinic-7", key)
        agent._apply_policy(
            {
                "review_threshold": 0.7,
                "evidence_sampling_rate": 1.0,
                "evidence_daily_cap": 5,
                "image_evidence": False,
                "site_kind": "clinic",
            }
        )
        _serve(agent, FixedRunner([0.5]))
        answer = agent.infer("digits", DIGIT, workflow_fields={"patient_ref": "P-4711"})
        assert answer["notice"] == "assistive, not a decision"
        agent.drain(flush=True)
        assert agent.drain_evidence() == 1
        ((_, _, body),) = list(server.evidence.values())
        data = json.loads(body)
        assert data["inputs"] == DIGIT and data["confidence"] == 0.5
        assert b"gw-clinic-7" not in body and b"P-4711" not in body
        assert agent.queue.device_epoch.epoch.encode() not in body
        agent.queue.close()
        agent.evidence.close()


def test_a_simulated_dock_gateway_uploads_its_low_confidence_cases(tmp_path):
    from cryptography.hazmat.primitives import serialization

    from gateway.loadgen import FleetDevice
    from gateway.runner import SyntheticProfile, SyntheticRunner
    from gateway.simulate import HARD_CASE_SHARE, SimOptions, SimulatedGateway, gateway_spec

    key = device_auth.generate_device_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    clock = Clock(time.time())
    with FakeServer("gw-dock-1", key.public_key()) as server:
        spec = gateway_spec(
            FleetDevice(device_id="gw-dock-1", private_key_pem=pem),
            [],
            seed=11,
            started=datetime.now(UTC),
        )
        gateway = SimulatedGateway(
            spec,
            server=server.url,
            state_root=tmp_path,
            options=SimOptions(inferences_per_minute=600),
            clock=clock,
        )
        agent = gateway.agent
        # A dock's policy as the desired state brings it (the fake server has no desired
        # state: the poll fails and the policy stays).
        agent._apply_policy(
            {
                "review_threshold": 0.6,
                "evidence_sampling_rate": 1.0,
                "evidence_audit_rate": 0.0,
                "evidence_daily_cap": 1000,
                "image_evidence": True,
                "site_kind": "dock",
                "telemetry_interval_s": 10,
            }
        )
        profile = spec.profile("1.0.0")
        assert isinstance(profile, SyntheticProfile) and profile.hard_case_share == HARD_CASE_SHARE
        runner = SyntheticRunner(SimpleNamespace(io_contract=None), profile, seed=3)
        _serve(agent, runner)
        gateway.started = True
        for _ in range(60):  # a simulated minute
            clock.now += 1.0
            gateway.step()
        served = gateway.counts.inferences
        gateway.options = SimOptions(inferences_per_minute=0)  # stop inferring; let it drain
        for _ in range(4):
            clock.now += 11.0
            gateway.step()  # the last partial batches, and their samples (4 a step)
        report = gateway.report()
        assert served >= 400 and report["queued"] == 0
        assert report["evidence_enqueued"] >= 10  # ~8 % hard cases under the 0.6 threshold
        assert report["evidence_sent"] == report["evidence_enqueued"]
        assert report["evidence_queued"] == 0
        reasons = Counter(reason for reason, _, _ in server.evidence.values())
        media = Counter(m for _, m, _ in server.evidence.values())
        assert reasons == {"low_confidence": report["evidence_sent"]}
        assert media == {"image/png": report["evidence_sent"]}
        assert server.evidence_before_event == 0
        gateway.close()


# --- against the real server (its evidence endpoint, review/) ------------------------------------


@pytest.fixture
def live_agent(world, live_server, tmp_path, settings):
    """An enrolled agent at a dock site whose policy sends every case as an audit sample (the
    tiny four-input model is always sure), cap 3; the real server behind the live server."""
    from django.db import transaction

    from fleet import services as fleet_services
    from modelregistry import assignment_services
    from opshero.actors import Actor
    from tests.factories import enroll_device
    from tests.rollouts.fleet import RUNTIME, build

    settings.MEDIA_ROOT = tmp_path / "media"
    with transaction.atomic():
        w = build(world, sites=1, per_site=0)
        device, key = enroll_device(w.org, site=w.sites[0])
        device.hardware_target = w.target
        device.runtime_version = RUNTIME
        device.save()
        fleet_services.set_operating_policy(
            organization=w.org,
            actor=w.admin,
            site=w.sites[0],
            evidence_sampling_rate=1.0,
            evidence_audit_rate=1.0,
            evidence_daily_cap=3,
        )
        assignment_services.assign_version(
            organization=w.org,
            model=w.model,
            version=w.baseline,
            device_ids=[device.pk],
            actor=Actor.system("tests"),
        )
    agent = Agent(
        tmp_path / "state",
        AgentConfig(listen="", min_poll_interval_s=1),
        server=live_server.url,
        device_id=str(device.uid),
        private_key=key,
    )
    agent.start()
    yield device, agent
    agent.control.close()
    agent.sender.transport.close()
    agent.queue.close()
    agent.evidence.close()


@pytest.mark.django_db(transaction=True)
def test_the_real_server_stores_the_agents_samples_and_its_answers_settle_the_queue(live_agent):
    from review.models import EvidenceSample

    device, agent = live_agent
    assert agent.poll_desired() is True
    assert agent.evidence_policy.daily_cap == 3 and agent.evidence_policy.audit_rate == 1.0
    answers = [agent.infer("dock damage", [[0.1, 0.2, 0.3, 0.4]]) for _ in range(2)]
    first, second = (a["event"]["sequence"] for a in answers)
    assert agent.drain(flush=True) == 1
    assert {a["confidence"] for a in answers} == {1.0}  # confident: audit samples
    assert agent.drain_evidence() == 2
    epoch = agent.queue.device_epoch.epoch
    stored = EvidenceSample.objects.filter(device=device).order_by("sequence")
    assert [(s.epoch, s.sequence, s.reason, s.media_type) for s in stored] == [
        (epoch, first, "audit", "application/json"),
        (epoch, second, "audit", "application/json"),
    ]
    assert agent.evidence.counts().sent == 2

    def again(sequence: int, body: bytes) -> None:
        agent.evidence.enqueue(
            EvidenceRef(epoch=epoch, sequence=sequence, reason="audit"),
            media_type="application/json",
            body=body,
            daily_cap=100,  # as a gateway whose count went wrong: the server still decides
        )

    third = agent.infer("dock damage", [[0.4, 0.3, 0.2, 0.1]])["event"]["sequence"]
    agent.drain(flush=True)
    assert agent.drain_evidence() == 1  # the third: the day's cap (3) is now used up
    # A different sample for an event that has one: refused for good, counted by its code.
    again(first, b'{"other": "sample"}')
    assert agent.uploader.drain_once() == "refused"
    assert agent.evidence.counts().refused == {"evidence_conflict": 1}
    # Beyond the server's cap: held (429 evidence_cap), nothing deleted.
    fourth = agent.infer("dock damage", [[0.5, 0.5, 0.5, 0.5]])["event"]["sequence"]
    assert fourth == third + 1
    assert agent.evidence.counts().queued == 0  # the gateway's own count (3) held it back
    assert agent.status()["evidence"]["not_sent_over_cap"] == 1
    agent.drain(flush=True)
    again(fourth, b'{"inputs": [[0.5, 0.5, 0.5, 0.5]]}')
    assert agent.uploader.drain_once() == "capped"
    assert agent.evidence.counts().queued == 1
    assert agent.status()["evidence"]["held_until"] is not None
    assert EvidenceSample.objects.filter(device=device).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_simulated_dock_gateways_low_confidence_cases_reach_the_real_server_as_images(
    world, live_server, tmp_path, settings
):
    from cryptography.hazmat.primitives import serialization
    from django.db import transaction

    from fleet import services as fleet_services
    from gateway.loadgen import FleetDevice, FleetFile
    from modelregistry import assignment_services
    from opshero.actors import Actor
    from review.models import EvidenceSample
    from tests.factories import enroll_device
    from tests.gateway.test_simulate import Running, _simulation
    from tests.rollouts.fleet import RUNTIME, build

    settings.MEDIA_ROOT = tmp_path / "media"
    with transaction.atomic():
        w = build(world, sites=1, per_site=0)
        assert w.sites[0].kind != "clinic"
        device, key = enroll_device(w.org, site=w.sites[0])
        device.hardware_target = w.target
        device.runtime_version = RUNTIME
        device.save()
        fleet_services.set_operating_policy(
            organization=w.org,
            actor=w.admin,
            site=w.sites[0],
            desired_poll_interval_s=15,
            telemetry_interval_s=10,
            review_threshold=0.6,
            evidence_sampling_rate=1.0,
            evidence_audit_rate=0.0,
            evidence_daily_cap=100,
        )
        assignment_services.assign_version(
            organization=w.org,
            model=w.model,
            version=w.baseline,
            device_ids=[device.pk],
            actor=Actor.system("tests"),
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    file = FleetFile(
        server=live_server.url,
        devices=(FleetDevice(device_id=str(device.uid), private_key_pem=pem),),
    )
    running = Running(_simulation(file, tmp_path / "state", inferences_per_minute=600))

    def samples_landed() -> bool:
        return EvidenceSample.objects.filter(device=device).count() >= 3

    running.wait_for(samples_landed, 60, "three evidence samples on the server")
    summary = running.stop()
    assert summary["evidence_sent"] >= 3 and summary["evidence_refused"] == 0
    samples = list(EvidenceSample.objects.filter(device=device))
    assert {(s.reason, s.media_type) for s in samples} == {("low_confidence", "image/png")}
    (gateway,) = running.simulation.gateways
    assert {s.epoch for s in samples} == {gateway.agent.queue.device_epoch.epoch}
