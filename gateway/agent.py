"""The gateway agent: desired state → verified install → inference → store and forward.

`Agent` holds one gateway's parts (queue, sender, model store, the models that serve) and the
steps that move them: `poll_desired`, `confirm_health`, `infer`, `record_health`,
`drain`. `run` drives them in threads until SIGTERM (`opshero-gateway run`); the simulator
(`gateway.simulate`) drives the same steps from asyncio for many gateways at once, with a
synthetic runner in place of onnxruntime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from protocol.evidence import EvidenceRef
from protocol.manifest import ModelManifest
from protocol.telemetry import HealthEvent, InferenceEvent, ModelRef

from .config import AgentConfig
from .evidence import (
    EVIDENCE_FILE,
    EvidencePolicy,
    EvidenceQueue,
    EvidenceSampler,
    EvidenceUploader,
    build_sample,
    status_block,
)
from .health import HealthProbe
from .installer import Installed, InstallRefused, ModelStore, TransientError, write_json
from .runner import HealthCheckFailed, InputError, ModelRunner, OnnxRunner, Prediction
from .sender import Sender
from .store import EventQueue
from .transport import NETWORK_ERRORS, SignedTransport

__all__ = ["AGENT_VERSION", "Agent", "InferenceRefused"]

from . import __version__ as AGENT_VERSION

DESIRED_PATH = "/api/v1/device/desired"
CLINICAL_NOTICE = "assistive, not a decision"
# A refused offer is not tried again for this long (unless the server changes it).
REFUSAL_RETRY_S = 3600.0
# Healthy confirmations while a rollout watches a deployment, this often.
CONFIRM_INTERVAL_S = 15.0
DEFAULT_POLICY = {
    "review_threshold": 0.7,
    "telemetry_interval_s": 60,
    "desired_poll_interval_s": 60,
    "site_kind": "",
    # No evidence leaves until the server's policy says how much may (an older server's
    # desired state has none of these keys).
    "evidence_sampling_rate": 0.0,
    "evidence_audit_rate": 0.0,
    "evidence_daily_cap": 0,
    "image_evidence": False,
}
log = logging.getLogger("opshero.gateway.agent")
_validate = msgspec.json.Decoder(InferenceEvent)
_encode = msgspec.json.Encoder()


class InferenceRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Serving:
    item: Installed
    runner: ModelRunner
    manifest_ref: ModelRef
    served: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Confirmation:
    action_id: int
    model_id: int
    version_id: int
    purpose: str
    started: float
    last_status: str = ""


class Agent:
    def __init__(
        self,
        state_dir: str | Path,
        config: AgentConfig,
        *,
        server: str,
        device_id: str,
        private_key: Any,
        load_runner: Callable[[Path, ModelManifest], ModelRunner] | None = None,
        probe: HealthProbe | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        synchronous: str = "NORMAL",
        evidence_rng: random.Random | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.config = config
        self.device_id = device_id
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter
        self.queue = EventQueue(
            self.state_dir / "queue.sqlite3",
            max_events=config.queue_max_events,
            max_bytes=config.queue_max_mb * 1024 * 1024,
            ttl_s=config.queue_ttl_hours * 3600,
            overflow=config.overflow,  # type: ignore[arg-type]
            clock=clock,
            synchronous=synchronous,  # type: ignore[arg-type]
        )

        def transport() -> SignedTransport:
            return SignedTransport(
                server=server, device_id=device_id, private_key=private_key, timeout=30
            )

        self.sender = Sender(self.queue, transport(), batch_size=config.batch_size, rng=self.rng)
        self.evidence = EvidenceQueue(self.state_dir / EVIDENCE_FILE, clock=clock)
        self.sampler = EvidenceSampler(self.evidence, rng=evidence_rng)
        # On the sender's thread and connection (one user of a connection at a time).
        self.uploader = EvidenceUploader(
            self.evidence,
            self.sender.transport,
            ready=self._event_left_queue,
            clock=clock,
            rng=self.rng,
        )
        self.evidence_policy = EvidencePolicy()
        self.control = transport()  # desired state, downloads and reports (one thread)
        if load_runner is None:

            def load_runner(path: Path, manifest: ModelManifest) -> ModelRunner:
                return OnnxRunner(path, manifest, threads=config.ort_threads)

        self.store = ModelStore(
            self.state_dir,
            load_runner=load_runner,
            clock=lambda: datetime.fromtimestamp(clock(), UTC),
        )
        self.probe = probe or HealthProbe()
        self.serving: dict[str, Serving] = {}
        self._serving_lock = threading.Lock()
        self.etag: str | None = None
        self.policy: dict[str, Any] = dict(DEFAULT_POLICY)
        self.confirmations: dict[int, _Confirmation] = {}
        self.refused: dict[tuple, str] = {}
        self.refused_at: dict[tuple, float] = {}
        # Reports the server did not answer, the latest per deployment (sent on the next poll).
        self.pending_reports: dict[int, dict[str, Any]] = {}
        # The latest deployment reports and their answers (diagnostics; the server keeps all).
        self.reports: deque[tuple[int, dict[str, Any], int | None]] = deque(maxlen=100)
        self.last_poll_ok: float | None = None
        self._desired_file = self.state_dir / "desired.json"
        self._apply_policy({})
        self._stop = threading.Event()

    # --- start-up

    def start(self, *, enrollment_keys: list[dict] | None = None) -> None:
        """Trust the enrollment's keys if nothing is trusted yet, load what is installed."""
        if not self.store.trust.keys and enrollment_keys:
            self.store.trust.update(
                {
                    k["key_id"]: k["public_key_pem"]
                    for k in enrollment_keys
                    if k.get("status") == "active"
                }
            )
        if self._desired_file.exists():
            try:
                cached = json.loads(self._desired_file.read_text())
                self._apply_policy(cached.get("policy") or {})
            except ValueError:
                pass
        for model_id, (item, runner) in self.store.load_installed().items():
            self._serve(item, runner)
            log.info("model loaded", extra={"fields": {"model": item.ref, "model_id": model_id}})

    # --- serving

    def _serve(self, item: Installed, runner: ModelRunner) -> Serving | None:
        serving = Serving(
            item, runner, ModelRef(name=item.model, version=item.version, sha256=item.sha256)
        )
        with self._serving_lock:
            old = self.serving.get(item.model)
            for name, other in list(self.serving.items()):
                if other.item.model_id == item.model_id and name != item.model:
                    del self.serving[name]  # the model was renamed on the server
            self.serving[item.model] = serving
        return old

    def model_names(self) -> list[dict[str, Any]]:
        with self._serving_lock:
            return [
                {
                    "model": name,
                    "version": s.item.version,
                    "sha256": s.item.sha256,
                    "classes": list(s.runner.labels),
                    "served": s.served,
                }
                for name, s in sorted(self.serving.items())
            ]

    def status(self) -> dict[str, Any]:
        """The agent's state at a glance (``GET /healthz``): models, link, queue accounting."""
        counts = self.queue.counts()
        return {
            "status": "ok",
            "device": self.device_id,
            "models": len(self.serving),
            "online": self.sender.online,
            "last_error": self.sender.counts.last_error,
            "queue": {
                "epoch": self.queue.device_epoch.epoch,
                "next_sequence": self.queue.next_sequence,
                "depth": counts.depth,
                "bytes": counts.bytes,
                "enqueued": counts.enqueued,
                "sent": counts.sent,
                "refused": counts.refused,
                "evicted": counts.evicted,
            },
            "evidence": {
                **status_block(self.evidence.counts(), daily_cap=self.evidence_policy.daily_cap),
                "not_sent_over_cap": self.sampler.capped,
                **self.uploader.status(),
            },
        }

    def infer(
        self, model: str, inputs: Any, *, workflow_fields: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run one inference, queue its event, answer the caller."""
        with self._serving_lock:
            serving = self.serving.get(model)
        if serving is None:
            known = ", ".join(sorted(self.serving)) or "none loaded yet"
            raise InferenceRefused(
                404, "unknown_model", f"no model {model!r} runs here (models: {known})"
            )
        workflow = dict(workflow_fields or {})
        self._check_workflow(serving, workflow)  # before the model runs: a refusal serves nothing
        try:
            prediction = serving.runner.predict(inputs)
        except InputError as exc:
            raise InferenceRefused(400, "invalid_input", str(exc)) from None
        except HealthCheckFailed as exc:
            with serving.lock:
                serving.errors += 1
            raise InferenceRefused(503, "model_error", str(exc)) from None
        with serving.lock:
            serving.served += 1
        now = datetime.fromtimestamp(self.clock(), UTC)
        sequence = self._queue_inference(serving, prediction, workflow, now=now)
        if sequence is not None:
            self._sample_evidence(serving, prediction, inputs, sequence, now)
        threshold = float(self.policy.get("review_threshold", 0.7))
        answer = {
            "model": serving.item.model,
            "version": serving.item.version,
            "prediction": prediction.predicted_class,
            "confidence": prediction.confidence,
            "needs_review": prediction.confidence < threshold,
            "review_threshold": threshold,
            "latency_ms": prediction.latency_ms,
            "event": {"epoch": self.queue.device_epoch.epoch, "sequence": sequence},
        }
        if self.policy.get("site_kind") == "clinic":
            answer["notice"] = CLINICAL_NOTICE
        return answer

    def _check_workflow(self, serving: Serving, workflow: dict[str, Any]) -> None:
        """The wire schema's limits on workflow fields (keys, lengths, value types), checked
        now: a caller's bad field is its error, not an event the server refuses later."""
        probe = InferenceEvent(
            epoch=self.queue.device_epoch.epoch,
            sequence=0,
            timestamp=datetime.now(UTC),
            model=serving.manifest_ref,
            latency_ms=0.0,
            confidence=0.5,
            predicted_class="",
            shape_bucket="",
            workflow_fields=workflow,
        )
        try:
            _validate.decode(_encode.encode(probe))
        except msgspec.ValidationError as exc:
            raise InferenceRefused(400, "invalid_workflow_fields", str(exc)) from None

    def _queue_inference(
        self,
        serving: Serving,
        prediction: Prediction,
        workflow: Mapping[str, Any],
        *,
        now: datetime | None = None,
    ) -> int | None:
        now = now or datetime.fromtimestamp(self.clock(), UTC)

        def make(sequence: int) -> InferenceEvent:
            return InferenceEvent(
                epoch=self.queue.device_epoch.epoch,
                sequence=sequence,
                timestamp=now,
                model=serving.manifest_ref,
                latency_ms=prediction.latency_ms,
                confidence=prediction.confidence,
                predicted_class=prediction.predicted_class[:200],
                shape_bucket=prediction.shape_bucket,
                workflow_fields=dict(workflow),
            )

        given = self.queue.enqueue(make)
        return given[0] if given else None

    # --- evidence samples

    def _sample_evidence(
        self, serving: Serving, prediction: Prediction, inputs: Any, sequence: int, now: datetime
    ) -> str | None:
        """Queue an evidence sample of this case when the site policy draws it (the reason),
        else None. Never fails the inference: a sample that cannot be made is logged."""
        policy = self.evidence_policy
        try:
            reason = self.sampler.decide(confidence=prediction.confidence, policy=policy)
            if reason is None:
                return None
            sample = build_sample(
                inputs=inputs,
                predicted_class=prediction.predicted_class[:200],
                confidence=prediction.confidence,
                model_name=serving.item.model,
                model_version=serving.item.version,
                timestamp=now,
                image_allowed=policy.image_evidence,
            )
            ref = EvidenceRef(epoch=self.queue.device_epoch.epoch, sequence=sequence, reason=reason)
            queued = self.evidence.enqueue(
                ref, media_type=sample.media_type, body=sample.body, daily_cap=policy.daily_cap
            )
        except Exception:
            log.exception("evidence sample not queued", extra={"fields": {"sequence": sequence}})
            return None
        return reason if queued else None

    def _event_left_queue(self, ref: EvidenceRef) -> bool:
        """True once the sample's event has left the telemetry queue (accepted by the server,
        or evicted): the server can then link the sample at once."""
        if ref.epoch != self.queue.device_epoch.epoch:
            return True
        oldest = self.queue.oldest_sequence()
        return oldest is None or ref.sequence < oldest

    def drain_evidence(self, *, max_samples: int | None = None) -> int:
        """Upload queued evidence samples (those whose event has been sent); the number settled."""
        return self.uploader.drain(max_samples=max_samples)

    # --- health

    def record_health(self) -> int | None:
        reading = self.probe.read()
        now = datetime.fromtimestamp(self.clock(), UTC)
        online = self.sender.online

        def make(sequence: int, depth: int, buffered: int, evicted: int) -> HealthEvent:
            return HealthEvent(
                epoch=self.queue.device_epoch.epoch,
                sequence=sequence,
                timestamp=now,
                cpu_utilisation=reading.cpu_utilisation,
                temperature_c=reading.temperature_c,
                throttled=reading.throttled,
                memory_mb=reading.memory_mb,
                queue_depth=depth,
                online=online,
                buffered=buffered,
                evicted=evicted,
            )

        return self.queue.enqueue_health(make)

    # --- desired state

    def poll_interval_s(self) -> float:
        base = max(
            self.config.min_poll_interval_s,
            float(self.policy.get("desired_poll_interval_s") or 60),
        )
        return base * self.rng.uniform(0.9, 1.1)

    def poll_desired(self) -> bool:
        """Fetch the desired state (ETag) and act on it; True when it changed."""
        self._flush_reports()
        headers = {"If-None-Match": self.etag} if self.etag else {}
        try:
            answer = self.control.call("GET", DESIRED_PATH, headers=headers)
        except NETWORK_ERRORS as exc:
            log.warning("desired state unreachable", extra={"fields": {"why": str(exc)}})
            return False
        if answer.status == 304:
            self.last_poll_ok = self.clock()
            return False
        if answer.status != 200 or not isinstance(answer.json(), dict):
            log.warning(
                "desired state refused",
                extra={"fields": {"status": answer.status, "code": answer.error_code()}},
            )
            return False
        self.last_poll_ok = self.clock()
        doc = answer.json()
        complete = self.apply_desired(doc)
        # Keep the ETag only when everything was settled: a transient failure (download
        # interrupted) must be retried on the next poll, not hidden behind a 304.
        self.etag = answer.headers.get("etag") if complete else None
        return True

    def apply_desired(self, doc: Mapping[str, Any]) -> bool:
        policy = doc.get("policy") or {}
        self._apply_policy(policy)
        write_json(self._desired_file, {"policy": self.policy})
        self.store.trust.update(
            {k["key_id"]: k["public_pem"] for k in doc.get("trusted_keys") or ()},
            set(doc.get("revoked_key_ids") or ()),
        )
        complete = True
        listed = set()
        for entry in doc.get("models") or ():
            listed.add(int(entry["model_id"]))
            try:
                self._apply_entry(entry)
            except (KeyError, TypeError, ValueError) as exc:
                complete = False
                log.error(
                    "desired entry not understood; skipped",
                    extra={"fields": {"model": entry.get("model"), "why": repr(exc)}},
                )
            except TransientError as exc:
                complete = False
                log.warning(
                    "model update postponed",
                    extra={
                        "fields": {
                            "model": entry.get("model"),
                            "version": entry.get("version"),
                            "why": str(exc),
                        }
                    },
                )
        for model_id in [m for m in self.store.records if m not in listed]:
            item = self.store.current(model_id)
            with self._serving_lock:
                serving = self.serving.pop(item.model, None) if item else None
            if serving is not None:
                serving.runner.close()
            self.store.forget(model_id)
            log.info(
                "model no longer assigned; unloaded",
                extra={"fields": {"model": item.ref if item else model_id}},
            )
        return complete

    def _apply_entry(self, entry: Mapping[str, Any]) -> None:
        model_id = int(entry["model_id"])
        action_id = entry.get("action_id")
        purpose = str(entry.get("purpose") or "install")
        current = self.store.current(model_id)
        if not entry.get("envelope"):
            log.warning(
                "assigned version has no live signature; the running model keeps serving",
                extra={"fields": {"model": entry.get("model"), "why": entry.get("refused")}},
            )
            return
        with self._serving_lock:
            serving = self.serving.get(current.model) if current is not None else None
        envelope_sha = hashlib.sha256(str(entry["envelope"]).encode()).hexdigest()
        up_to_date = (
            current is not None
            and serving is not None
            and serving.item.directory == current.directory  # it really serves
            and current.version_id == int(entry["version_id"])
            and current.sha256 == entry["sha256"]
            # a re-signed envelope (key rotation: same counter) is taken too
            and current.envelope_sha256 == envelope_sha
        )
        if up_to_date:
            if action_id and action_id not in self.confirmations:
                if purpose == "rollback":
                    self._report(action_id, "rolled_back")
                else:
                    self._watch(action_id, model_id, current.version_id, purpose)
            return
        key = (
            int(entry["version_id"]),
            entry.get("release_counter"),
            entry["sha256"],
            hash(entry["envelope"]),
            action_id,  # a new rollout of the same offer hears the refusal too
        )
        refused_at = self.refused_at.get(key)
        if key in self.refused and refused_at is not None:
            if self.clock() - refused_at < REFUSAL_RETRY_S:
                return  # refused already (and reported); tried again after an hour
            del self.refused[key]
        reports: list[str] = []

        def progress(status: str) -> None:
            if action_id and purpose == "install":
                reports.append(status)
                self._report(action_id, status)

        try:
            item, runner = self.store.prepare(entry, self.control, report=progress)
        except InstallRefused as exc:
            self._refuse(key, entry, action_id, exc.code, exc.reason)
            return
        except HealthCheckFailed as exc:
            self._refuse(key, entry, action_id, "health_check_failed", str(exc))
            return
        self.store.activate(item)
        old = self._serve(item, runner)
        if old is not None and old.runner is not runner:
            old.runner.close()
        log.info(
            "model installed",
            extra={
                "fields": {
                    "model": item.ref,
                    "release_counter": item.release_counter,
                    "purpose": purpose,
                }
            },
        )
        self._report_status()
        if action_id:
            if purpose == "rollback":
                self._report(action_id, "rolled_back")
            else:
                self._report(action_id, "installed")
                self._watch(action_id, model_id, item.version_id, purpose)

    def _refuse_at(self, key: tuple) -> None:
        self.refused_at[key] = self.clock()

    def _refuse(
        self, key: tuple, entry: Mapping[str, Any], action_id: Any, code: str, reason: str
    ) -> None:
        self.refused[key] = code
        self._refuse_at(key)
        log.error(
            "model refused; the running model keeps serving",
            extra={
                "fields": {
                    "model": entry.get("model"),
                    "version": entry.get("version"),
                    "code": code,
                    "why": reason,
                }
            },
        )
        if action_id:
            self._report(action_id, "failed", reason_code=code[:40], reason=reason[:500])

    def _watch(self, action_id: int, model_id: int, version_id: int, purpose: str) -> None:
        self.confirmations[action_id] = _Confirmation(
            action_id, model_id, version_id, purpose, self.clock()
        )

    def confirm_health(self) -> None:
        """Confirm "healthy" (with inferences served) for every watched deployment."""
        for action_id, watch in list(self.confirmations.items()):
            item = self.store.current(watch.model_id)
            if (
                item is None
                or item.version_id != watch.version_id
                or self.clock() - watch.started > 86400
            ):
                del self.confirmations[action_id]
                continue
            with self._serving_lock:
                serving = self.serving.get(item.model)
            served = serving.served if serving else 0
            if served < 1:
                continue  # healthy means serving: wait for the first inference
            # Not kept when unanswered: the next round confirms again, with a newer count.
            answer = self._report(action_id, "healthy", keep=False, inferences_served=served)
            if answer is None:
                continue
            status = str(answer.get("status") or answer.get("refused") or "")
            watch.last_status = status
            if status != "installed" or answer.get("changed") is False:
                # Healthy, failed, timed out or rolled back; or the rollout finished or asks
                # for a rollback (the report changed nothing): stop confirming.
                del self.confirmations[action_id]

    def _report(
        self, action_id: int, status: str, *, keep: bool = True, **fields: Any
    ) -> dict[str, Any] | None:
        """Report a deployment status; None when it must be retried later (kept pending
        unless ``keep`` is false), else the server's answer (``{"refused": code, "changed":
        False}`` for a refusal)."""
        payload = {"status": status, **fields}
        try:
            answer = self.control.call_json(
                "POST", f"/api/v1/device/deployments/{action_id}/status", payload
            )
        except NETWORK_ERRORS:
            if keep:
                self.pending_reports[action_id] = payload
            self.reports.append((action_id, dict(payload), None))
            return None
        self.reports.append((action_id, dict(payload), answer.status))
        if answer.status == 200:
            return answer.json()
        if answer.status in (429, 500, 502, 503, 504):
            if keep:
                self.pending_reports[action_id] = payload
            return None
        log.warning(
            "deployment report refused",
            extra={
                "fields": {
                    "action": action_id,
                    "status": status,
                    "answer": answer.status,
                    "code": answer.error_code(),
                }
            },
        )
        return {"refused": answer.error_code() or str(answer.status), "changed": False}

    def _flush_reports(self) -> None:
        pending, self.pending_reports = self.pending_reports, {}
        for action_id, payload in pending.items():
            payload = dict(payload)
            self._report(action_id, payload.pop("status"), **payload)

    def _report_status(self) -> None:
        with self._serving_lock:
            running = ", ".join(f"{s.item.model}@{s.item.version}" for s in self.serving.values())
        with contextlib.suppress(*NETWORK_ERRORS):  # a check-in; the next one will do
            self.control.call_json(
                "POST",
                "/api/v1/device/status",
                {"agent_version": AGENT_VERSION, "model_version": running[:120]},
            )

    # --- telemetry

    def drain(self, *, max_batches: int | None = None, flush: bool = False) -> int:
        """Send queued telemetry (``flush``: also a partial batch younger than the interval)."""
        return self.sender.drain(max_batches=max_batches, flush=flush)

    def _apply_policy(self, policy: Mapping[str, Any]) -> None:
        self.policy.update(policy)
        self.sender.flush_interval_s = float(self.policy.get("telemetry_interval_s") or 60)
        self.evidence_policy = EvidencePolicy.from_policy(self.policy)

    # --- the daemon

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, extra_threads: list[threading.Thread] | None = None) -> None:
        """Run every loop until `stop`; returns once the loops ended and the queue closed."""
        threads = [
            threading.Thread(target=self._loop_control, name="desired", daemon=True),
            threading.Thread(target=self._loop_sender, name="sender", daemon=True),
            threading.Thread(target=self._loop_health, name="health", daemon=True),
            *(extra_threads or []),
        ]
        for thread in threads:
            thread.start()
        log.info(
            "agent running",
            extra={"fields": {"device": self.device_id, "epoch": self.queue.device_epoch.epoch}},
        )
        self._stop.wait()
        # One deadline for the whole stop, inside systemd's TimeoutStopSec (30 s).
        deadline = time.monotonic() + 20.0
        for thread in threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        sender_thread = threads[1]
        if not sender_thread.is_alive():  # never two users of one connection
            self._final_flush(timeout_s=min(5.0, max(1.0, deadline + 8.0 - time.monotonic())))
        self.sender.transport.close()
        self.control.close()
        self.queue.close()
        self.evidence.close()
        log.info("agent stopped")

    def _final_flush(self, *, timeout_s: float = 5.0, max_batches: int = 20) -> None:
        """On the way out, send what is queued if the server answers at once (short timeout,
        bounded batches, so a stop never hangs); whatever is left stays queued for the next
        start."""
        connection = self.sender.transport.connection
        connection.close()
        connection.timeout = timeout_s
        self.sender.retry_now()  # one try now, whatever the backoff said
        try:
            sent = self.sender.drain(max_batches=max_batches, flush=True)
        except Exception:  # a failed flush loses nothing: the events stay queued
            log.exception("final flush failed; events stay queued")
            return
        log.info(
            "final flush", extra={"fields": {"batches": sent, "queued": self.queue.counts().depth}}
        )

    def _loop_control(self) -> None:
        self._report_status()
        next_poll = 0.0
        while not self._stop.is_set():
            try:
                if self.clock() >= next_poll:
                    self.poll_desired()
                    next_poll = self.clock() + self.poll_interval_s()
                self.confirm_health()
            except Exception:  # one bad answer must not stop the loop
                log.exception("desired-state step failed")
                next_poll = self.clock() + self.poll_interval_s()
            wait = CONFIRM_INTERVAL_S if self.confirmations else next_poll - self.clock()
            self._stop.wait(max(0.5, min(wait, 30.0)))

    def _loop_sender(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.sender.drain_once()
            except Exception:
                log.exception("sender step failed")
                outcome = "failed"
            try:
                evidence = self.uploader.drain_once()
            except Exception:
                log.exception("evidence upload step failed")
                evidence = "failed"
            if outcome == "sent" or evidence in ("sent", "refused"):
                continue
            if outcome in ("empty", "holding"):
                self._stop.wait(1.0)
            else:
                self._stop.wait(max(0.2, min(self.sender.wait_s(), 5.0)))

    def _loop_health(self) -> None:
        while not self._stop.is_set():
            try:
                self.record_health()
            except Exception:
                log.exception("health step failed")
            self._stop.wait(self.config.health_interval_s)
