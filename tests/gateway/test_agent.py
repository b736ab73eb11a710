"""The agent against the real server (pytest-django's live server): it installs what the
desired state names after verifying it, serves it, forwards its telemetry, confirms a
rollout's deployment, and refuses tampered, foreign-key, expired and lower-counter envelopes
while the running model keeps serving, reporting each refusal with its code."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from onnx import TensorProto, helper

from fleet import services as fleet_services
from gateway.agent import DESIRED_PATH, Agent, InferenceRefused
from gateway.config import AgentConfig
from modelregistry import assignment_services
from modelregistry import services as registry
from opshero.actors import Actor
from opshero.roles import Role
from protocol import dsse, manifest
from rollouts import engine, services
from rollouts.models import DeploymentAction
from rollouts.planning import AnalysisSettings, WaveSpec
from telemetry.models import HealthEvent, InferenceEvent
from telemetry.routers import telemetry_db
from tests import onnx_models
from tests.factories import enroll_device
from tests.rollouts.fleet import RUNTIME, build, validate_and_sign

pytestmark = [pytest.mark.django_db(transaction=True)]
INPUT = [[0.1, 0.2, 0.3, 0.4]]


@pytest.fixture
def setup(world, live_server, tmp_path):
    with transaction.atomic():
        w = build(world, sites=1, per_site=0)
        device, key = enroll_device(w.org, site=w.sites[0])
        device.hardware_target = w.target
        device.runtime_version = RUNTIME
        device.save()
        fleet_services.set_operating_policy(
            organization=w.org, actor=w.admin, site=w.sites[0], desired_poll_interval_s=15
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
    yield w, device, agent
    agent.control.close()
    agent.sender.transport.close()
    agent.queue.close()


def _serving(agent: Agent) -> tuple[str, str]:
    (item,) = [s.item for s in agent.serving.values()]
    return item.version, item.sha256


def test_the_agent_installs_the_verified_assignment_serves_it_and_its_events_land_once(
    setup, celery_worker
):
    w, device, agent = setup
    assert agent.poll_desired() is True
    assert _serving(agent) == ("1.0.0", w.baseline.sha256)
    assert agent.store.trust.keys  # learned from the desired state
    current = agent.state_dir / "models" / str(w.model.pk) / "current"
    assert current.is_symlink() and (current / "envelope.json").exists()
    # The next poll is answered 304 and changes nothing.
    assert agent.poll_desired() is False

    answers = [agent.infer("dock damage", INPUT, workflow_fields={"lane": "3"}) for _ in range(5)]
    assert {a["version"] for a in answers} == {"1.0.0"}
    assert all(0.0 <= a["confidence"] <= 1.0 for a in answers)
    assert "notice" not in answers[0]  # a dock, not a clinic
    agent.record_health()
    with pytest.raises(InferenceRefused) as refused:
        agent.infer("dock damage", [[1, 2, 3]])
    assert refused.value.status == 400 and "dimension 1 is 3" in refused.value.message
    with pytest.raises(InferenceRefused) as unknown:
        agent.infer("nothing", INPUT)
    assert unknown.value.status == 404

    assert agent.drain(flush=True) >= 1
    counts = agent.queue.counts()
    assert counts.depth == 0 and counts.sent == counts.enqueued == 6

    def stored() -> int:
        db = telemetry_db()
        return (
            InferenceEvent.objects.using(db).filter(device_id=device.pk).count()
            + HealthEvent.objects.using(db).filter(device_id=device.pk).count()
        )

    import time

    deadline = time.monotonic() + 30
    while stored() < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored() == 6
    device.refresh_from_db()
    assert "dock damage@1.0.0" in device.reported_model_version


def test_a_clinic_answer_says_assistive_not_a_decision(setup):
    w, _, agent = setup
    site = w.sites[0]
    site.kind = "clinic"
    site.save()
    agent.poll_desired()
    answer = agent.infer("dock damage", INPUT)
    assert answer["notice"] == "assistive, not a decision"
    assert answer["needs_review"] == (answer["confidence"] < answer["review_threshold"])


def _rollout(w, device_soak: int = 0):
    rollout = services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[w.sites[0].pk],
        waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)],
        analysis=AnalysisSettings(device_soak_minutes=device_soak),
    )
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts()  # start
    engine.evaluate_rollouts()  # notify
    return rollout


def test_a_rollout_reaches_the_agent_which_installs_and_confirms_healthy(setup):
    w, device, agent = setup
    agent.poll_desired()
    rollout = _rollout(w)
    assert agent.poll_desired() is True
    assert _serving(agent) == ("1.1.0", w.candidate.sha256)
    action = DeploymentAction.objects.get(rollout=rollout, device=device)
    assert action.status == "installed"
    agent.confirm_health()  # nothing served yet: no confirmation
    action.refresh_from_db()
    assert action.status == "installed"
    agent.infer("dock damage", INPUT)
    agent.confirm_health()
    action.refresh_from_db()
    assert action.confirmed_at is not None and action.inferences_served == 1
    assert agent.confirmations  # still watching until the server says healthy
    engine.evaluate_rollouts()  # the engine promotes a confirmation past the device soak
    action.refresh_from_db()
    assert action.status == "healthy"
    agent.confirm_health()
    assert not agent.confirmations
    # The previous version is kept as the fallback, older ones pruned.
    record = agent.store.records[w.model.pk]
    assert record.previous is not None and record.previous.version == "1.0.0"


def _desired(agent: Agent) -> dict:
    answer = agent.control.call("GET", DESIRED_PATH)
    assert answer.status == 200
    return answer.json()


def _foreign_key():
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


def _resigned(envelope: str, private_pem: bytes, public_pem: bytes, **changes) -> str:
    statement = json.loads(dsse.parse_bundle(envelope.encode()).payload)
    signed = manifest.ModelManifest.from_dict(statement["predicate"]["opshero_manifest"])
    changed = replace(signed, signing_key_id=dsse.key_id(public_pem), **changes)
    return manifest.sign_manifest(manifest=changed, private_key_pem=private_pem).decode()


def _refusal(agent: Agent, doc: dict, action: DeploymentAction) -> str:
    """Apply ``doc``; return the reason code the agent reported to the server (answered 200)."""
    agent.refused.clear()
    agent.reports.clear()
    assert agent.apply_desired(doc) is True
    (failed,) = [(a, p, status) for a, p, status in agent.reports if p["status"] == "failed"]
    assert failed[0] == action.pk and failed[2] == 200
    failed = failed[1:]
    assert failed[0]["reason"]
    return failed[0]["reason_code"]


def test_tampered_foreign_expired_and_lower_counter_envelopes_are_refused_and_reported(
    setup, settings
):
    w, device, agent = setup
    agent.poll_desired()
    assert _serving(agent)[0] == "1.0.0"
    installed_counter = agent.store.current(w.model.pk).release_counter
    rollout = _rollout(w)
    action = DeploymentAction.objects.get(rollout=rollout, device=device)
    good = _desired(agent)
    (entry,) = good["models"]
    assert entry["action_id"] == action.pk and entry["version"] == "1.1.0"
    served_before = agent.serving["dock damage"].served

    # 1. A tampered artifact: one byte flipped in storage, same size.
    artifact = Path(w.candidate.artifact.path)
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    try:
        assert _refusal(agent, good, action) == "digest_mismatch"
    finally:
        artifact.write_bytes(original)
    assert not list((agent.state_dir / "downloads").glob("*.part"))  # nothing half-kept
    # 2. A key the gateway does not trust.
    private, public = _foreign_key()
    foreign = json.loads(json.dumps(good))
    foreign["models"][0]["envelope"] = _resigned(entry["envelope"], private, public)
    assert _refusal(agent, foreign, action) == "unknown_key"
    # From here the foreign key is listed as trusted (as a rotation would): what it signs is
    # judged on its merits.
    trusted = json.loads(json.dumps(good))
    trusted["trusted_keys"].append({"key_id": dsse.key_id(public), "public_pem": public.decode()})
    # 3. An expired envelope.
    expired = json.loads(json.dumps(trusted))
    past = timezone.now() - timedelta(minutes=1)
    expired["models"][0]["envelope"] = _resigned(
        entry["envelope"], private, public, created_at=past - timedelta(days=1), expires_at=past
    )
    assert _refusal(agent, expired, action) == "expired"
    # 4. A counter below the running model's.
    lower = json.loads(json.dumps(trusted))
    lower["models"][0]["envelope"] = _resigned(
        entry["envelope"], private, public, release_counter=installed_counter - 1
    )
    lower["models"][0]["release_counter"] = installed_counter - 1
    assert _refusal(agent, lower, action) == "rollback"

    # Through all of it the running model kept serving, and every refusal was audited on
    # the action as a failure with its reason.
    assert _serving(agent)[0] == "1.0.0"
    answer = agent.infer("dock damage", INPUT)
    assert answer["version"] == "1.0.0"
    assert agent.serving["dock damage"].served == served_before + 1
    action.refresh_from_db()
    assert action.status == "failed" and action.reason_code == "digest_mismatch"


def test_a_restart_verifies_installed_models_again_and_refuses_a_file_altered_on_disk(
    setup, live_server
):
    w, _, agent = setup
    agent.poll_desired()
    item = agent.store.current(w.model.pk)
    agent.queue.close()

    def restarted() -> Agent:
        again = Agent(
            agent.state_dir,
            AgentConfig(listen=""),
            server=live_server.url,
            device_id=agent.device_id,
            private_key=agent.control.private_key,
        )
        again.start()
        return again

    again = restarted()
    assert _serving(again) == ("1.0.0", w.baseline.sha256)  # verified and loaded, offline
    assert again.queue.device_epoch == agent.queue.device_epoch  # same numbering
    again.queue.close()
    model_file = agent.store.version_dir(item) / item.entrypoint
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0xFF
    model_file.write_bytes(bytes(data))
    third = restarted()
    assert third.serving == {}  # an altered file never serves
    # ... and the next desired state repairs it: the bad copy is thrown away and fetched.
    assert third.poll_desired() is True
    assert _serving(third) == ("1.0.0", w.baseline.sha256)
    third.control.close()
    third.queue.close()


def test_a_partial_download_resumes_and_a_wrong_partial_is_discarded(setup):
    w, _, agent = setup
    size = w.baseline.artifact.size
    original = Path(w.baseline.artifact.path).read_bytes()
    part = agent.state_dir / "downloads" / f"{w.baseline.sha256}.part"
    part.write_bytes(original[: size // 2])  # the first half arrived before a power cut
    assert agent.poll_desired() is True
    assert _serving(agent)[0] == "1.0.0"
    assert not part.exists()

    # A partial copy holding other bytes: the whole file fails its digest, the copy is
    # dropped, and the next poll fetches it whole.
    agent.store.forget(w.model.pk)
    agent.serving.clear()
    shutil.rmtree(agent.state_dir / "models" / str(w.model.pk))
    agent.etag = None
    part.write_bytes(b"\0" * (size // 2))
    agent.poll_desired()
    assert agent.serving == {} and not part.exists()
    agent.refused.clear()
    agent.etag = None
    agent.poll_desired()
    assert _serving(agent)[0] == "1.0.0"


def test_a_model_that_fails_its_health_check_never_serves_and_is_reported(setup):
    w, device, agent = setup
    agent.poll_desired()
    # 1.2.0 answers NaN for every input: it loads, but the reference input exposes it.
    with transaction.atomic():
        nan = helper.make_node("Log", ["S0"], ["Y"], name="log")
        shift = helper.make_tensor("C", TensorProto.FLOAT, [4], [-10.0] * 4)
        graph = onnx_models.tiny_model(initializer=shift)
        graph.graph.node[1].output[0] = "S0"  # Relu(X - 10) = 0, then Log(0) = -inf
        graph.graph.node.append(nan)
        version = registry.upload_version(
            model=w.model,
            actor=w.planner,
            artifact=ContentFile(graph.SerializeToString(), name="tiny-1.2.0.onnx"),
            version="1.2.0",
        )
        version = validate_and_sign(version, w.target, w.approver, "c" * 64)
    rollout = services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=version,
        site_ids=[w.sites[0].pk],
        waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)],
        analysis=AnalysisSettings(device_soak_minutes=0),
    )
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts()
    engine.evaluate_rollouts()
    agent.poll_desired()
    assert _serving(agent)[0] == "1.0.0"
    action = DeploymentAction.objects.get(rollout=rollout, device=device)
    assert action.status == "failed" and action.reason_code == "health_check_failed"
    assert "non-finite" in action.detail
    # Refused once; the same offer is not tried again on every poll.
    agent.etag = None
    reports = len(agent.reports)
    agent.poll_desired()
    assert len(agent.reports) == reports


def test_an_unsigned_sha256_that_walks_out_of_the_state_dir_is_refused(setup):
    _, _, agent = setup
    doc = _desired(agent)
    doc["models"][0]["sha256"] = "/../../../../" + "a" * 52
    assert agent.apply_desired(doc) is True
    assert agent.serving == {}
    assert agent.state_dir.exists() and (agent.state_dir / "queue.sqlite3").exists()
    assert list(agent.refused.values()) == ["malformed_entry"]


def test_a_re_signed_envelope_with_the_same_counter_replaces_the_one_on_disk(setup, live_server):
    """A key rotation re-signs every live manifest with the same counter; the gateway must
    keep the new envelope, or it cannot load its model once the old key is gone."""
    w, _, agent = setup
    agent.poll_desired()
    good = _desired(agent)
    private, public = _foreign_key()
    rotated = json.loads(json.dumps(good))
    rotated["models"][0]["envelope"] = _resigned(good["models"][0]["envelope"], private, public)
    rotated["trusted_keys"] = [{"key_id": dsse.key_id(public), "public_pem": public.decode()}]
    agent.apply_desired(rotated)
    item = agent.store.current(w.model.pk)
    assert (agent.store.version_dir(item) / "envelope.json").read_text() == rotated["models"][0][
        "envelope"
    ]
    agent.queue.close()
    again = Agent(
        agent.state_dir,
        AgentConfig(listen=""),
        server=live_server.url,
        device_id=agent.device_id,
        private_key=agent.control.private_key,
    )
    again.start()
    assert _serving(again)[0] == "1.0.0"  # verifies with the new key, the old one dropped
    again.queue.close()


def test_an_unassigned_model_keeps_its_counter_floor(setup):
    w, _, agent = setup
    agent.poll_desired()
    installed = agent.store.current(w.model.pk).release_counter
    good = _desired(agent)
    agent.apply_desired({**good, "models": []})  # unassigned: unloaded, forgotten
    assert agent.serving == {}
    private, public = _foreign_key()
    older = json.loads(json.dumps(good))
    older["trusted_keys"].append({"key_id": dsse.key_id(public), "public_pem": public.decode()})
    older["models"][0]["envelope"] = _resigned(
        good["models"][0]["envelope"], private, public, release_counter=installed - 1
    )
    agent.apply_desired(older)
    assert agent.serving == {}
    assert list(agent.refused.values()) == ["rollback"]
