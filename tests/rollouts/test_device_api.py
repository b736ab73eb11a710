"""The rollouts device API: desired state with its ETag, artifact download with ranges, and
deployment status reports, each signed the documented way (tests/fleet/api/test_device_views)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet import services as fleet_services
from fleet.models import DeviceCredential
from modelregistry import assignment_services, signing_services
from modelregistry.assignment_services import live_signature_ids as live_signatures
from modelregistry.models import DeviceAssignment, ModelSignature
from opshero.actors import Actor
from opshero.roles import Role
from protocol import device_auth, manifest
from rollouts import engine, services
from rollouts.models import DeploymentAction
from tests.fleet.api.test_device_views import error_of, signed
from tests.rollouts.fleet import build, tiny_version, validate_and_sign

DESIRED = "/api/v1/device/desired"

pytestmark = pytest.mark.django_db


def with_key(device):
    """Give a factory-made device an active credential; returns its private key."""
    key = device_auth.generate_device_key()
    DeviceCredential.objects.create(
        device=device,
        public_key=device_auth.public_key_text(key),
        fingerprint=device_auth.key_fingerprint(key.public_key()),
    )
    return key


class Gateway:
    def __init__(self, client, device):
        self.client, self.device, self.key = client, device, with_key(device)

    def get(self, path, headers=None):
        return signed(self.client, "GET", path, self.key, self.device.uid, headers=headers)

    def post(self, path, body):
        return signed(
            self.client, "POST", path, self.key, self.device.uid, json.dumps(body).encode()
        )


@pytest.fixture
def w(world):
    return build(world, sites=2, per_site=2)


@pytest.fixture
def gw(client, w):
    return Gateway(client, w.devices[0])


def trust(payload):
    return {
        k["key_id"]: manifest.TrustedKey(k["public_pem"].encode(), "active")
        for k in payload["trusted_keys"]
    }


def download(gw, entry, headers=None):
    response = gw.get(entry["artifact_url"], headers)
    return response, b"".join(response.streaming_content) if response.status_code < 300 else b""


# --- desired ----------------------------------------------------------------------------------


def test_desired_lists_the_assignment_with_an_envelope_that_verifies(gw, w):
    response = gw.get(DESIRED)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-cache"
    assert response["ETag"].startswith('"desired-')
    payload = response.json()
    assert payload["device"] == str(gw.device.uid)
    (entry,) = payload["models"]
    assert (entry["model"], entry["version"], entry["purpose"]) == (
        "dock damage",
        "1.0.0",
        "install",
    )
    assert entry["sha256"] == w.baseline.sha256 and entry["size"] == w.baseline.size_bytes
    assert entry["action_id"] is None and entry["fallback"] is None
    assert entry["artifact_url"] == f"/api/v1/device/artifacts/{w.baseline.pk}"
    live = assignment_services.live_signature(w.baseline)
    assert entry["envelope"] == live.envelope and entry["release_counter"] == live.release_counter
    assert payload["revoked_key_ids"] == []
    assert payload["policy"]["source"] == "default" and payload["policy"]["revision"] == 0
    assert "review_threshold" in payload["policy"]
    _, data = download(gw, entry)
    verified = manifest.verify_artifact(
        envelope_bytes=entry["envelope"].encode(),
        trusted_keys=trust(payload),
        now=timezone.now(),
        artifact_bytes=data,
        expected_model="dock damage",
    )
    assert verified.manifest.version == "1.0.0"


def test_etag_gives_304_then_changes_with_assignment_key_and_policy(gw, w):
    first = gw.get(DESIRED)
    etag = first["ETag"]
    again = gw.get(DESIRED, {"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert gw.get(DESIRED, {"If-None-Match": f"W/{etag}"}).status_code == 304
    assert gw.get(DESIRED, {"If-None-Match": '"other"'}).status_code == 200

    assignment_services.assign_version(
        organization=w.org,
        model=w.model,
        version=w.candidate,
        device_ids=[gw.device.pk],
        actor=Actor.system("tests"),
    )
    changed = gw.get(DESIRED, {"If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["models"][0]["fallback"]["version"] == "1.0.0"
    etag = changed["ETag"]

    signing_services.rotate_signing_key(organization=w.org, actor=w.admin)
    rotated = gw.get(DESIRED, {"If-None-Match": etag})
    assert rotated.status_code == 200 and rotated["ETag"] != etag
    assert len(rotated.json()["revoked_key_ids"]) == 1
    etag = rotated["ETag"]

    fleet_services.set_operating_policy(
        organization=w.org, actor=w.admin, site=gw.device.site, review_threshold=0.9
    )
    policy = gw.get(DESIRED, {"If-None-Match": etag})
    assert policy.status_code == 200 and policy["ETag"] != etag
    assert policy.json()["policy"]["review_threshold"] == 0.9
    assert policy.json()["policy"]["source"] == "site"
    assert gw.get(DESIRED, {"If-None-Match": policy["ETag"]}).status_code == 304

    # Cleared and set again to the same values: a new revision, so a new answer.
    from fleet.models import OperatingPolicy

    fleet_services.clear_operating_policy(
        policy=OperatingPolicy.objects.get(site=gw.device.site), actor=w.admin
    )
    fleet_services.set_operating_policy(
        organization=w.org, actor=w.admin, site=gw.device.site, review_threshold=0.9
    )
    recreated = gw.get(DESIRED, {"If-None-Match": policy["ETag"]})
    assert recreated.status_code == 200
    assert recreated.json()["policy"]["revision"] > policy.json()["policy"]["revision"]


def test_a_version_without_a_live_signature_is_listed_refused(gw, w):
    ModelSignature.objects.filter(version=w.baseline).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    (entry,) = gw.get(DESIRED).json()["models"]
    assert entry["envelope"] is None and entry["release_counter"] is None
    assert "expired" in entry["refused"]


def test_unsigned_and_wrong_key_requests_are_401(client, gw):
    assert client.get(DESIRED).status_code == 401
    other = device_auth.generate_device_key()
    response = signed(client, "GET", DESIRED, other, gw.device.uid)
    assert response.status_code == 401 and error_of(response)["code"] == "bad_signature"


def _assign_more_models(w, devices, n):
    for i in range(n):
        from modelregistry import services as registry

        model = registry.create_model(organization=w.org, actor=w.planner, name=f"extra {i}")
        version = validate_and_sign(
            tiny_version(model, w.admin, "1.0.0", 0.1 * (i + 2)),
            w.target,
            w.planner,
            f"{i + 1}" * 64,
        )
        assignment_services.assign_version(
            organization=w.org,
            model=model,
            version=version,
            device_ids=[d.pk for d in devices],
            actor=Actor.system("tests"),
        )


def _count(gw, headers=None):
    with CaptureQueriesContext(connection) as ctx:
        response = gw.get(DESIRED, headers)
    assert response.status_code in (200, 304)
    return len(ctx.captured_queries), response


def test_desired_query_count_does_not_grow_with_assignments(gw, w):
    gw.get(DESIRED)  # last_seen_at is written on the first request only
    one, response = _count(gw)
    cached, _ = _count(gw, {"If-None-Match": response["ETag"]})
    _assign_more_models(w, [gw.device], 2)
    three, response = _count(gw)
    assert len(response.json()["models"]) == 3
    assert three == one
    # Unchanged polls are answered from the cache: the device's authentication only.
    assert _count(gw, {"If-None-Match": response["ETag"]})[0] == cached < one


def test_bulk_live_signatures_agree_with_live_signature(w):
    other = validate_and_sign(
        tiny_version(w.model, w.admin, "2.0.0", 0.75), w.target, w.planner, "c" * 64
    )
    assignment_services.reissue_signature(version=w.baseline, actor=Actor.system("t"), reason="x")
    ModelSignature.objects.filter(version=other).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    versions = [w.baseline, w.candidate, other]
    bulk = live_signatures({v.pk for v in versions}, now=timezone.now())
    for version in versions:
        single = assignment_services.live_signature(version)
        assert bulk.get(version.pk) == ((single.pk, single.release_counter) if single else None), (
            version
        )
    assert other.pk not in bulk


# --- artifacts --------------------------------------------------------------------------------


def test_artifact_of_an_unassigned_version_or_another_orgs_device_is_404(client, gw, w, world):
    response = gw.get(f"/api/v1/device/artifacts/{w.candidate.pk}")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert gw.get("/api/v1/device/artifacts/999999").status_code == 404
    from tests.factories import make_device

    outsider = Gateway(client, make_device(world.b.org, status="active"))
    assert outsider.get(f"/api/v1/device/artifacts/{w.baseline.pk}").status_code == 404


def test_artifact_download_headers_and_ranges(gw, w):
    url = f"/api/v1/device/artifacts/{w.baseline.pk}"
    whole = gw.get(url)
    data = b"".join(whole.streaming_content)
    size = len(data)
    assert whole.status_code == 200 and size == w.baseline.size_bytes
    assert whole["Content-Length"] == str(size) and whole["Accept-Ranges"] == "bytes"
    assert whole["ETag"] == f'"{w.baseline.sha256}"'
    assert whole["Content-Type"] == "application/octet-stream"
    assert whole["Content-Disposition"].startswith('attachment; filename="tiny-1.0.0')

    part = gw.get(url, {"Range": "bytes=0-9"})
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 0-9/{size}"
    head = b"".join(part.streaming_content)
    assert head == data[:10] and part["Content-Length"] == "10"
    rest = gw.get(url, {"Range": "bytes=10-"})
    assert rest.status_code == 206 and head + b"".join(rest.streaming_content) == data
    tail = gw.get(url, {"Range": "bytes=-5"})
    assert b"".join(tail.streaming_content) == data[-5:]
    assert tail["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}"

    beyond = gw.get(url, {"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"
    assert error_of(beyond)["code"] == "range_not_satisfiable"
    several = gw.get(url, {"Range": "bytes=0-1,4-5"})
    assert several.status_code == 416 and error_of(several)["code"] == "multiple_ranges"
    for bad in ("bytes=abc", "bytes=5-2", "items=0-1", "bytes=-"):
        response = gw.get(url, {"Range": bad})
        assert response.status_code == 400, bad
        assert error_of(response)["code"] == "malformed_range"
    stale = gw.get(url, {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and b"".join(stale.streaming_content) == data


# --- deployment status ------------------------------------------------------------------------


def running_rollout(w):
    rollout = services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[s.pk for s in w.sites],
        canary_site_ids=[w.sites[0].pk],
        seed=7,
    )
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts()
    return rollout


def status_url(action_id):
    return f"/api/v1/device/deployments/{action_id}/status"


def test_status_reports_flow_idempotent_and_never_backwards(client, w):
    rollout = running_rollout(w)
    action = DeploymentAction.objects.filter(rollout=rollout, status="notified").first()
    gw = Gateway(client, action.device)
    entry = gw.get(DESIRED).json()["models"][0]
    assert entry["action_id"] == action.pk and entry["version"] == "1.1.0"
    url = status_url(action.pk)

    response = gw.post(url, {"status": "downloading"})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "action": action.pk,
        "status": "downloading",
        "changed": True,
        "note": "",
    }
    again = gw.post(url, {"status": "downloading"}).json()
    assert again["changed"] is False and again["status"] == "downloading"
    assert gw.post(url, {"status": "installed"}).json()["status"] == "installed"
    back = gw.post(url, {"status": "verifying"})
    assert back.status_code == 409 and error_of(back)["code"] == "status_backwards"
    healthy = gw.post(url, {"status": "healthy", "inferences_served": 12}).json()
    assert healthy["changed"] is True and healthy["status"] == "installed"
    assert "soak" in healthy["note"]
    action.refresh_from_db()
    assert action.confirmed_at is not None and action.inferences_served == 12
    # The device repeats its confirmation as it keeps serving: each one is newer evidence.
    first_confirmation = action.confirmed_at
    again = gw.post(url, {"status": "healthy", "inferences_served": 40}).json()
    assert again["changed"] is True and again["status"] == "installed"
    action.refresh_from_db()
    assert action.confirmed_at > first_confirmation and action.inferences_served == 40


def test_status_refusals(client, w):
    rollout = running_rollout(w)
    mine = DeploymentAction.objects.filter(rollout=rollout, status="notified").first()
    theirs = DeploymentAction.objects.filter(rollout=rollout).exclude(pk=mine.pk).first()
    gw = Gateway(client, mine.device)
    other = gw.post(status_url(theirs.pk), {"status": "downloading"})
    assert other.status_code == 404 and error_of(other)["code"] == "unknown_action"
    status_before = theirs.status
    theirs.refresh_from_db()
    assert theirs.status == status_before
    unknown = gw.post(status_url(mine.pk), {"status": "exploded"})
    assert unknown.status_code == 422 and error_of(unknown)["code"] == "invalid_status"
    typed = gw.post(status_url(mine.pk), {"status": "failed", "inferences_served": "many"})
    assert typed.status_code == 400 and "inferences_served" in error_of(typed)["fields"]
    long = gw.post(status_url(mine.pk), {"status": "failed", "reason": "x" * 501})
    assert long.status_code == 422 and list(error_of(long)["fields"]) == ["reason"]
    mine.refresh_from_db()
    assert mine.status == "notified"


# --- rollback under anti-rollback -------------------------------------------------------------


def test_rollback_reissues_the_baseline_with_a_higher_counter(client, w):
    rollout = running_rollout(w)
    action = DeploymentAction.objects.filter(rollout=rollout, status="notified").first()
    gw = Gateway(client, action.device)
    candidate_entry = gw.get(DESIRED).json()["models"][0]
    candidate_counter = candidate_entry["release_counter"]
    old_baseline = ModelSignature.objects.filter(version=w.baseline).order_by("pk").first()
    gw.post(status_url(action.pk), {"status": "installed"})

    services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="slow")

    payload = gw.get(DESIRED).json()
    (entry,) = payload["models"]
    assert (entry["version"], entry["purpose"]) == ("1.0.0", "rollback")
    assert entry["action_id"] == action.pk
    assert entry["release_counter"] > candidate_counter > old_baseline.release_counter
    _, data = download(gw, entry)
    verified = manifest.verify_artifact(
        envelope_bytes=entry["envelope"].encode(),
        trusted_keys=trust(payload),
        now=timezone.now(),
        artifact_bytes=data,
        min_release_counter=candidate_counter,
    )
    assert verified.manifest.version == "1.0.0"
    with pytest.raises(manifest.VerificationError) as refused:
        manifest.verify_artifact(
            envelope_bytes=old_baseline.envelope.encode(),
            trusted_keys=trust(payload),
            now=timezone.now(),
            artifact_bytes=data,
            min_release_counter=candidate_counter,
        )
    assert refused.value.code is manifest.RefusalCode.ROLLBACK

    ignored = gw.post(status_url(action.pk), {"status": "healthy", "inferences_served": 3})
    assert ignored.json()["changed"] is False
    done = gw.post(status_url(action.pk), {"status": "rolled_back"}).json()
    assert done == {"action": action.pk, "status": "rolled_back", "changed": True, "note": ""}
    assert DeviceAssignment.objects.get(device=gw.device).version_id == w.baseline.pk


def test_an_unchanged_poll_is_answered_from_the_cache_and_a_change_is_seen_at_once(gw, w):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = gw.get(DESIRED)
    etag = first["ETag"]
    with CaptureQueriesContext(connection) as full:
        assert gw.get(DESIRED, {"If-None-Match": '"other"'}).status_code == 200
    with CaptureQueriesContext(connection) as cached:
        assert gw.get(DESIRED, {"If-None-Match": etag}).status_code == 304
    reads = [q["sql"] for q in cached.captured_queries]
    assert not any("modelregistry_deviceassignment" in sql for sql in reads), reads
    assert len(cached) < len(full)
    # Any audited change in the organisation (here: a new assignment) moves its generation.
    from modelregistry import assignment_services

    assignment_services.assign_version(
        organization=w.org,
        model=w.model,
        version=w.candidate,
        device_ids=[gw.device.pk],
        actor=w.admin,
    )
    changed = gw.get(DESIRED, {"If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["models"][0]["version"] == "1.1.0"
