"""Staged rollouts through the services and the engine (issue 15's tests): every allowed and
refused transition, four-eyes, approvals voided by a changed report, waves advancing on device
reports, the error threshold, timeouts, analysis fail → rollback and inconclusive → extend →
ask, maintenance windows, overlap refusals, and the anti-rollback re-issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from fleet.models import Device
from modelregistry.assignment_services import live_signature
from modelregistry.models import DeviceAssignment, ModelVersion, ValidationRun
from opshero import services as platform_services
from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden, InvalidInput, NotFound
from opshero.models import AuditEvent
from opshero.roles import Role
from protocol import manifest
from rollouts import engine, services
from rollouts.analysis import Thresholds
from rollouts.audit import RolloutVerb
from rollouts.models import DeploymentAction, Rollout, Wave
from rollouts.planning import AnalysisSettings, WaveSpec
from rollouts.transitions import (
    ACTION_TRANSITIONS,
    ROLLOUT_TRANSITIONS,
    WAVE_TRANSITIONS,
    transition_action,
    transition_rollout,
    transition_wave,
)
from tests.rollouts.fleet import build
from tests.rollouts.telemetry_rows import write_minutes

A = DeploymentAction.Status
R = Rollout.Status
W = Wave.Status
DEVICE = Actor.system("device under test")

pytestmark = pytest.mark.django_db


def _plan(w, *, waves=None, analysis=None, sites=None, canary=None, seed=11):
    return services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[s.pk for s in (sites or w.sites)],
        canary_site_ids=[(canary or w.sites[0]).pk],
        waves=waves,
        analysis=analysis,
        seed=seed,
    )


def _approved(w, **kwargs) -> Rollout:
    rollout = _plan(w, **kwargs)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    rollout.refresh_from_db()
    return rollout


def _confirm(actions, inferences=20, *, installed_minutes_ago=6):
    """The devices installed the version ``installed_minutes_ago`` (past the 5-minute device
    soak) and confirm now that it loaded and is serving."""
    for action in actions:
        services.report_action_status(
            device=action.device, action_id=action.pk, status="installed", actor=DEVICE
        )
    DeploymentAction.objects.filter(pk__in=[a.pk for a in actions]).update(
        installed_at=timezone.now() - timedelta(minutes=installed_minutes_ago)
    )
    for action in actions:
        services.report_action_status(
            device=action.device,
            action_id=action.pk,
            status="healthy",
            inferences_served=inferences,
            actor=DEVICE,
        )


def _wave_actions(rollout, number):
    return list(DeploymentAction.objects.filter(rollout=rollout, wave__number=number))


# --- state machines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "choices"),
    [(ROLLOUT_TRANSITIONS, R), (WAVE_TRANSITIONS, W), (ACTION_TRANSITIONS, A)],
    ids=["rollout", "wave", "action"],
)
def test_every_state_has_a_row_and_targets_are_states(table, choices):
    assert set(table) == set(choices.values)
    for targets in table.values():
        assert targets <= set(choices.values)


def _every_pair(table):
    return [(a, b) for a in table for b in table if a != b]


def _bare(world):
    """One rollout, wave and action as plain rows: the machines need nothing more, and these
    tests run once per pair of states."""
    from modelregistry.models import MlModel
    from tests.factories import make_device

    org = world.a.org
    model = MlModel.objects.create(organization=org, name="bare")
    version = ModelVersion.objects.create(
        model=model,
        version="1",
        artifact="artifacts/bare.onnx",
        file_name="bare.onnx",
        sha256="a" * 64,
        size_bytes=1,
        status=ModelVersion.Status.SIGNED,
    )
    rollout = Rollout.objects.create(
        organization=org, model=model, version=version, name="r", seed=1
    )
    wave = Wave.objects.create(rollout=rollout, number=0, name="all", share_percent=100.0)
    device = make_device(org)
    action = DeploymentAction.objects.create(
        organization=org,
        rollout=rollout,
        wave=wave,
        device=device,
        model=model,
        site_id=device.site_id,
    )
    return rollout, wave, action, Actor.system("tests")


@pytest.mark.parametrize(("current", "to"), _every_pair(ROLLOUT_TRANSITIONS))
def test_rollout_transitions_allowed_and_refused(world, current, to):
    rollout, _, _, actor = _bare(world)
    Rollout.objects.filter(pk=rollout.pk).update(status=current)
    rollout.refresh_from_db()
    if to in ROLLOUT_TRANSITIONS[current]:
        transition_rollout(rollout=rollout, to=to, actor=actor)
        rollout.refresh_from_db()
        assert rollout.status == to
        event = AuditEvent.objects.filter(verb=RolloutVerb.ROLLOUT_TRANSITIONED).latest("at")
        assert event.data["from"] == current and event.data["to"] == to
    else:
        with pytest.raises(Conflict):
            transition_rollout(rollout=rollout, to=to, actor=actor)
        rollout.refresh_from_db()
        assert rollout.status == current


@pytest.mark.parametrize(("current", "to"), _every_pair(WAVE_TRANSITIONS))
def test_wave_transitions_allowed_and_refused(world, current, to):
    _, wave, _, actor = _bare(world)
    Wave.objects.filter(pk=wave.pk).update(status=current)
    wave.refresh_from_db()
    if to in WAVE_TRANSITIONS[current]:
        transition_wave(wave=wave, to=to, actor=actor)
        assert Wave.objects.get(pk=wave.pk).status == to
    else:
        with pytest.raises(Conflict):
            transition_wave(wave=wave, to=to, actor=actor)
        assert Wave.objects.get(pk=wave.pk).status == current


@pytest.mark.parametrize(("current", "to"), _every_pair(ACTION_TRANSITIONS))
def test_action_transitions_allowed_and_refused(world, current, to):
    _, _, action, actor = _bare(world)
    DeploymentAction.objects.filter(pk=action.pk).update(status=current)
    action.refresh_from_db()
    if to in ACTION_TRANSITIONS[current]:
        transition_action(action=action, to=to, actor=actor)
        assert DeploymentAction.objects.get(pk=action.pk).status == to
    else:
        with pytest.raises(Conflict):
            transition_action(action=action, to=to, actor=actor)
        assert DeploymentAction.objects.get(pk=action.pk).status == current


# --- planning refusals ------------------------------------------------------------------------


def test_plan_excludes_devices_and_says_why(world):
    w = build(world, sites=2, per_site=3)
    first, second, third = w.devices_at(w.sites[1])
    Device.objects.filter(pk=first.pk).update(runtime_version="onnxruntime 1.11.0")
    Device.objects.filter(pk=second.pk).update(status=Device.Status.REVOKED)
    Device.objects.filter(pk=third.pk).update(hardware_target=None)
    rollout = _plan(w)
    reasons = {entry["device_id"]: entry["reason"] for entry in rollout.exclusions}
    assert reasons[first.pk] == "onnxruntime 1.11 implements opset 16; the model needs 17"
    assert reasons[second.pk] == "device is revoked"
    assert reasons[third.pk].startswith("no hardware target")
    assert rollout.actions.count() == 3  # the first site's devices only


def test_unsigned_version_empty_target_and_overlap_are_refused(world):
    w = build(world, sites=2, per_site=2)
    ModelVersion.objects.filter(pk=w.candidate.pk).update(status=ModelVersion.Status.VALIDATED)
    w.candidate.refresh_from_db()
    with pytest.raises(Conflict, match="only a signed version"):
        _plan(w)
    ModelVersion.objects.filter(pk=w.candidate.pk).update(status=ModelVersion.Status.SIGNED)
    w.candidate.refresh_from_db()
    with pytest.raises(InvalidInput) as empty:
        services.create_rollout(
            organization=w.org, actor=w.planner, role=Role.APPROVER, version=w.candidate
        )
    assert empty.value.code == "empty_target"
    with pytest.raises(InvalidInput) as canaries:
        services.create_rollout(
            organization=w.org,
            actor=w.planner,
            role=Role.APPROVER,
            version=w.candidate,
            site_ids=[s.pk for s in w.sites],
            canary_site_ids=[],
        )
    assert canaries.value.code == "canary_sites"
    _plan(w)
    with pytest.raises(Conflict) as overlap:
        _plan(w)
    assert overlap.value.code == "overlapping_rollout"
    assert "already in rollout #" in str(overlap.value)
    assert Rollout.objects.count() == 1


def test_expired_signature_is_refused(world):
    w = build(world, sites=1, per_site=1)
    w.candidate.signatures.update(expires_at=timezone.now() - timedelta(days=1))
    with pytest.raises(Conflict) as refused:
        _plan(w, waves=[WaveSpec(name="all", share_percent=100.0)])
    assert refused.value.code == "signature_expired"


def test_viewer_and_planner_cannot_plan(world):
    w = build(world, sites=1, per_site=1)
    with pytest.raises(Forbidden):
        services.create_rollout(
            organization=w.org,
            actor=w.planner,
            role=Role.PLANNER,
            version=w.candidate,
            site_ids=[w.sites[0].pk],
            waves=[WaveSpec(name="all", share_percent=100.0)],
        )


# --- four-eyes and the approval pins ----------------------------------------------------------


def test_creator_cannot_approve_and_admins_never_approve(world):
    w = build(world, sites=1, per_site=2)
    rollout = _plan(w)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    with pytest.raises(Forbidden) as own:
        services.approve_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    assert own.value.code == "four_eyes"
    with pytest.raises(Forbidden):
        services.approve_rollout(rollout=rollout, actor=w.admin, role=Role.ADMIN)
    admin_rollout_creator = Actor.for_user(world.a.user(Role.ADMIN))
    assert admin_rollout_creator.user != w.approver.user
    rollout.refresh_from_db()
    assert rollout.status == R.PENDING_APPROVAL
    approval = services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    assert approval.artifact_sha256 == w.candidate.sha256
    assert approval.four_eyes_relaxed is False


def test_single_approver_setting_relaxes_four_eyes_and_says_so(world):
    w = build(world, sites=1, per_site=2)
    platform_services.set_single_approver(
        organization=w.org, enabled=True, actor=w.admin, reason="one technical manager"
    )
    w.org.refresh_from_db()
    rollout = _plan(w)
    rollout.organization.refresh_from_db()
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    approval = services.approve_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    assert approval.four_eyes_relaxed is True


def test_rejection_needs_a_reason(world):
    w = build(world, sites=1, per_site=2)
    rollout = _plan(w)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    with pytest.raises(InvalidInput):
        services.reject_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason=" ")
    services.reject_rollout(
        rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="wrong season"
    )
    rollout.refresh_from_db()
    assert rollout.status == R.REJECTED
    assert rollout.approvals.get().reason == "wrong season"


def test_approval_is_void_when_the_validation_evidence_changes(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w)
    # The version is validated again on the same target: a new report digest.
    ValidationRun.objects.create(
        version=w.candidate,
        target=w.target,
        number=9,
        status=ValidationRun.Status.PASSED,
        report={"passed": True, "steps": []},
        report_digest="c" * 64,
        finished_at=timezone.now() + timedelta(seconds=5),
    )
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.status == R.DRAFT
    approval = rollout.approvals.get()
    assert approval.voided_at is not None
    assert "validation evidence changed" in approval.void_reason
    assert not DeviceAssignment.objects.filter(version=w.candidate).exists()


def test_approval_is_void_when_the_artifact_digest_changes(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w)
    ModelVersion.objects.filter(pk=w.candidate.pk).update(sha256="f" * 64)
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.status == R.DRAFT
    assert "artifact digest changed" in rollout.approvals.get().void_reason


# --- waves on device reports ------------------------------------------------------------------


def _quick_waves(soak=0, deadline=60):
    return [
        WaveSpec(
            name="Canary", share_percent=None, soak_minutes=soak, device_deadline_minutes=deadline
        ),
        WaveSpec(name="50 %", share_percent=50.0, soak_minutes=0, device_deadline_minutes=deadline),
        WaveSpec(
            name="100 %", share_percent=100.0, soak_minutes=0, device_deadline_minutes=deadline
        ),
    ]


def test_waves_advance_as_devices_report_and_installed_is_not_healthy(world):
    w = build(world, sites=3, per_site=4)
    rollout = _approved(w, waves=_quick_waves())
    now = timezone.now()
    engine.evaluate_rollouts(now=now)
    rollout.refresh_from_db()
    assert rollout.status == R.RUNNING
    canary = _wave_actions(rollout, 0)
    assert len(canary) == 3  # one device of the canary site stays on the baseline
    assert {a.status for a in canary} == {A.NOTIFIED}
    assert all(a.device.site_id == w.sites[0].pk for a in canary)
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == 3
    for action in canary:
        services.report_action_status(
            device=action.device, action_id=action.pk, status="installed", actor=DEVICE
        )
    engine.evaluate_rollouts(now=now + timedelta(minutes=10))
    assert {a.status for a in _wave_actions(rollout, 0)} == {A.INSTALLED}  # no confirmation
    # Installed is not healthy: a confirmation right after install does not count ...
    _confirm(canary, installed_minutes_ago=0)
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=10))
    assert {a.status for a in _wave_actions(rollout, 0)} == {A.INSTALLED}
    # ... one made after serving through the device soak does.
    _confirm(canary)
    later = timezone.now() + timedelta(minutes=1)
    engine.evaluate_rollouts(now=later)
    assert {a.status for a in _wave_actions(rollout, 0)} == {A.HEALTHY}
    waves = {wave.number: wave for wave in rollout.waves.all()}
    assert waves[0].status == W.DONE and waves[1].status == W.RUNNING
    second = _wave_actions(rollout, 1)
    assert len(second) == 5  # ceil(9 non-canary * 50 %), keepers held back
    _confirm(second)
    engine.evaluate_rollouts(now=later + timedelta(minutes=6))
    third = _wave_actions(rollout, 2)
    assert {a.status for a in third} == {A.NOTIFIED}
    _confirm(third)
    engine.evaluate_rollouts(now=later + timedelta(minutes=12))
    rollout.refresh_from_db()
    assert rollout.status == R.COMPLETED
    assert not DeploymentAction.objects.filter(rollout=rollout, active=True).exists()
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == 12
    # Every site kept a device on the baseline until the last wave.
    last_wave_sites = {a.site_id for a in third}
    assert last_wave_sites == {site.pk for site in w.sites}


def test_the_error_threshold_pauses_and_resume_accepts_it(world):
    w = build(world, sites=2, per_site=4)
    rollout = _approved(w, waves=_quick_waves())
    engine.evaluate_rollouts()
    canary = _wave_actions(rollout, 0)
    services.report_action_status(
        device=canary[0].device,
        action_id=canary[0].pk,
        status="failed",
        reason_code="health_check_failed",
        reason="reference input gave NaN",
        actor=DEVICE,
    )
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED
    assert "1 of 3 devices failed or timed out" in rollout.hold_reason
    services.resume_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    _confirm(canary[1:])
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=6))
    rollout.refresh_from_db()
    assert rollout.status == R.RUNNING
    assert rollout.waves.get(number=0).status == W.DONE


def test_stuck_devices_time_out(world):
    w = build(world, sites=2, per_site=3)
    rollout = _approved(w, waves=_quick_waves(deadline=30))
    now = timezone.now()
    engine.evaluate_rollouts(now=now)
    canary = _wave_actions(rollout, 0)
    _confirm(canary[:1])
    engine.evaluate_rollouts(now=now + timedelta(minutes=31))
    statuses = {a.pk: a.status for a in _wave_actions(rollout, 0)}
    assert statuses[canary[0].pk] == A.HEALTHY
    assert [s for s in statuses.values() if s == A.TIMED_OUT] == [A.TIMED_OUT]
    timed_out = DeploymentAction.objects.get(rollout=rollout, status=A.TIMED_OUT)
    assert timed_out.reason_code == "deadline"
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED  # 1 of 2 is over the 5 % error threshold


# --- device reports ---------------------------------------------------------------------------


def test_reports_are_idempotent_skip_forward_and_never_go_backwards(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0)])
    engine.evaluate_rollouts()
    action = rollout.actions.filter(status=A.NOTIFIED).first()
    device = action.device
    first = services.report_action_status(
        device=device, action_id=action.pk, status="verifying", actor=DEVICE
    )
    again = services.report_action_status(
        device=device, action_id=action.pk, status="verifying", actor=DEVICE
    )
    assert first.changed and not again.changed
    with pytest.raises(Conflict) as backwards:
        services.report_action_status(
            device=device, action_id=action.pk, status="downloading", actor=DEVICE
        )
    assert backwards.value.code == "status_backwards"
    other = Device.objects.exclude(pk=device.pk).first()
    with pytest.raises(NotFound):
        services.report_action_status(
            device=other, action_id=action.pk, status="installed", actor=DEVICE
        )
    with pytest.raises(InvalidInput):
        services.report_action_status(
            device=device, action_id=action.pk, status="healthy", actor=DEVICE
        )
    with pytest.raises(Conflict) as no_rollback:
        services.report_action_status(
            device=device, action_id=action.pk, status="rolled_back", actor=DEVICE
        )
    assert no_rollback.value.code == "no_rollback_requested"
    assert DeploymentAction.objects.get(pk=action.pk).status == A.VERIFYING


# --- canary analysis --------------------------------------------------------------------------


def _canary_soaking(w, *, auto_rollback=True, soak=30):
    analysis = AnalysisSettings(thresholds=Thresholds(min_events=200), auto_rollback=auto_rollback)
    rollout = _approved(w, waves=_quick_waves(soak=soak), analysis=analysis)
    engine.evaluate_rollouts()
    canary = _wave_actions(rollout, 0)
    _confirm(canary)
    soak_start = timezone.now() + timedelta(minutes=6)
    engine.evaluate_rollouts(now=soak_start)
    wave = rollout.waves.get(number=0)
    assert wave.status == W.SOAKING
    return rollout, canary, wave


def _field_data(w, rollout, canary, wave, *, candidate_latency, minutes=32):
    start = wave.soak_started_at
    peers = DeploymentAction.objects.filter(
        rollout=rollout, status=A.PENDING, site_id=w.sites[0].pk
    )
    for action in canary:
        write_minutes(
            org=w.org,
            device=action.device,
            version=w.candidate,
            start=start,
            minutes=minutes,
            latency_ms=candidate_latency,
        )
    for action in peers:
        write_minutes(
            org=w.org,
            device=action.device,
            version=w.baseline,
            start=start,
            minutes=minutes,
            latency_ms=40.0,
            per_minute=60,
        )


def test_a_slower_version_fails_the_analysis_pauses_and_rolls_back(world):
    w = build(world, sites=2, per_site=4)
    rollout, canary, wave = _canary_soaking(w)
    _field_data(w, rollout, canary, wave, candidate_latency=80.0)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    rollout.refresh_from_db()
    verdicts = {v.check_name: v for v in rollout.verdicts.all()}
    assert verdicts["latency_p95"].outcome == "fail"
    assert verdicts["latency_p95"].figures["ratio_low"] > 1.2
    assert verdicts["latency_p95"].baseline == "peers"
    assert verdicts["confidence_mean"].outcome == "pass"
    # The canary was all that ran the new version: the rollout is rolled back.
    assert rollout.status == R.ROLLED_BACK
    assert "canary analysis failed" in rollout.rollback_reason
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == 0
    back = DeviceAssignment.objects.filter(device__in=[a.device_id for a in canary])
    assert {a.version_id for a in back} == {w.baseline.pk}
    assert {a.purpose for a in back} == {"rollback"}
    # The previous version's manifest was re-issued above the candidate's counter.
    reissued = live_signature(w.baseline)
    candidate_counter = live_signature(w.candidate).release_counter
    assert reissued.reissue_of_id is not None
    assert reissued.release_counter > candidate_counter
    for action in canary:
        services.report_action_status(
            device=action.device, action_id=action.pk, status="rolled_back", actor=DEVICE
        )
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.rollback_finished_at is not None
    assert rollout.rollback_finished_at >= rollout.rollback_started_at


def test_a_version_as_fast_passes_and_the_next_wave_starts(world):
    w = build(world, sites=2, per_site=4)
    rollout, canary, wave = _canary_soaking(w)
    _field_data(w, rollout, canary, wave, candidate_latency=40.0)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    wave.refresh_from_db()
    outcomes = dict(wave.verdicts.values_list("check_name", "outcome"))
    assert set(outcomes.values()) == {"pass"}, list(
        wave.verdicts.exclude(outcome="pass").values_list("check_name", "summary")
    )
    assert wave.status == W.DONE
    assert rollout.waves.get(number=1).status == W.RUNNING


def test_inconclusive_extends_the_soak_once_then_asks_an_approver(world):
    w = build(world, sites=2, per_site=4)
    rollout, _, wave = _canary_soaking(w)  # no field data at all
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    wave.refresh_from_db()
    assert wave.extended and wave.status == W.SOAKING
    assert set(wave.verdicts.filter(round=1).values_list("outcome", flat=True)) >= {"inconclusive"}
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED and rollout.needs_decision
    assert wave.verdicts.filter(round=2).count() == 6
    services.resume_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(minutes=1))
    wave.refresh_from_db()
    assert wave.status == W.DONE and wave.inconclusive_accepted


def test_failed_analysis_without_auto_rollback_only_pauses(world):
    w = build(world, sites=2, per_site=4)
    rollout, canary, wave = _canary_soaking(w, auto_rollback=False)
    _field_data(w, rollout, canary, wave, candidate_latency=90.0)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED
    assert "P95" in rollout.hold_reason
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == len(canary)


# --- maintenance windows ----------------------------------------------------------------------


def test_devices_are_notified_only_inside_their_sites_window(world):
    # Sunday 02:00-04:00 local: Asia/Tokyo is UTC+9, America/New_York UTC-5 in January.
    windows = [{"day": 6, "start": "02:00", "end": "04:00"}]
    w = build(world, sites=2, per_site=2, windows=windows)
    w.sites[0].time_zone = "Asia/Tokyo"
    w.sites[0].save()
    w.sites[1].time_zone = "America/New_York"
    w.sites[1].save()
    rollout = _approved(
        w, waves=[WaveSpec(name="all", share_percent=100.0, device_deadline_minutes=3000)]
    )
    tokyo_open = datetime(2027, 1, 2, 18, 0, tzinfo=UTC)  # Sunday 03:00 in Tokyo
    engine.evaluate_rollouts(now=tokyo_open)
    notified = set(rollout.actions.filter(status=A.NOTIFIED).values_list("site_id", flat=True))
    assert notified == {w.sites[0].pk}
    new_york_open = datetime(2027, 1, 3, 8, 0, tzinfo=UTC)  # Sunday 03:00 in New York
    engine.evaluate_rollouts(now=new_york_open)
    assert rollout.actions.filter(status=A.NOTIFIED).count() == 4


# --- operator controls ------------------------------------------------------------------------


def test_abort_keeps_switched_devices_and_releases_claims(world):
    w = build(world, sites=2, per_site=2)
    rollout = _approved(w, waves=_quick_waves())
    engine.evaluate_rollouts()
    services.abort_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    rollout.refresh_from_db()
    assert rollout.status == R.ABORTED
    assert not rollout.actions.filter(active=True).exists()
    again = _plan(w)  # the devices are free for a new rollout
    assert again.actions.count() >= 1


def test_roll_back_one_wave_keeps_the_rollout_paused(world):
    w = build(world, sites=3, per_site=4)
    rollout = _approved(w, waves=_quick_waves())
    engine.evaluate_rollouts()
    _confirm(_wave_actions(rollout, 0))
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=6))
    second_wave = rollout.waves.get(number=1)
    services.roll_back(
        rollout=rollout, actor=w.approver, role=Role.APPROVER, wave=second_wave, reason="test"
    )
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED
    second_wave.refresh_from_db()
    assert second_wave.status == W.FAILED
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == 3  # the canary
    services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="all")
    rollout.refresh_from_db()
    assert rollout.status == R.ROLLED_BACK
    assert DeviceAssignment.objects.filter(version=w.candidate).count() == 0


def test_rollback_manifest_passes_the_devices_anti_rollback_check(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0)])
    engine.evaluate_rollouts()
    candidate = live_signature(w.candidate)
    old_baseline = live_signature(w.baseline)
    services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="slow")
    reissued = live_signature(w.baseline)
    assert reissued.pk != old_baseline.pk
    keys = {
        key.key_id: manifest.TrustedKey(public_pem=key.public_pem.encode(), status=key.status)
        for key in w.org.signing_keys.all()
    }
    artifact = w.baseline.artifact.open("rb").read()
    verified = manifest.verify_artifact(
        envelope_bytes=reissued.envelope.encode(),
        artifact_bytes=artifact,
        trusted_keys=keys,
        now=timezone.now(),
        min_release_counter=candidate.release_counter,
    )
    assert verified.manifest.release_counter == reissued.release_counter
    with pytest.raises(manifest.VerificationError) as replay:
        manifest.verify_artifact(
            envelope_bytes=old_baseline.envelope.encode(),
            artifact_bytes=artifact,
            trusted_keys=keys,
            now=timezone.now(),
            min_release_counter=candidate.release_counter,
        )
    assert replay.value.code == manifest.RefusalCode.ROLLBACK


# --- findings of the review (each failed before its fix) --------------------------------------


def test_resuming_a_manual_pause_does_not_accept_the_error_threshold(world):
    w = build(world, sites=2, per_site=4)
    rollout = _approved(w, waves=_quick_waves())
    engine.evaluate_rollouts()
    services.pause_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="coffee")
    services.resume_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    assert rollout.waves.get(number=0).errors_accepted is False
    canary = _wave_actions(rollout, 0)
    services.report_action_status(
        device=canary[0].device, action_id=canary[0].pk, status="failed", actor=DEVICE
    )
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED and rollout.hold_kind == "errors"


def test_evidence_changed_after_planning_refuses_the_approval(world):
    w = build(world, sites=1, per_site=3)
    rollout = _plan(w)
    ValidationRun.objects.create(
        version=w.candidate,
        target=w.target,
        number=5,
        status=ValidationRun.Status.FAILED,
        report={"passed": False, "steps": []},
        report_digest="e" * 64,
        finished_at=timezone.now() + timedelta(seconds=5),
    )
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    with pytest.raises(Conflict) as refused:
        services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    assert refused.value.code == "evidence_changed"
    rollout.refresh_from_db()
    assert rollout.status == R.PENDING_APPROVAL


def test_approving_what_was_not_seen_is_refused(world):
    w = build(world, sites=1, per_site=2)
    rollout = _plan(w)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    shown = services.approval_pins(w.candidate)
    with pytest.raises(Conflict) as refused:
        services.approve_rollout(
            rollout=rollout,
            actor=w.approver,
            role=Role.APPROVER,
            seen={**shown, "evidence_digest": "0" * 64},
        )
    assert refused.value.code == "approval_outdated"
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER, seen=shown)


def test_rollback_re_issues_an_expired_baseline_and_retiring_it_is_refused(world):
    from modelregistry import services as registry_services

    w = build(world, sites=1, per_site=2)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0)])
    engine.evaluate_rollouts()
    with pytest.raises(Conflict) as in_use:
        registry_services.retire_version(version=w.baseline, actor=w.admin)
    assert in_use.value.code == "version_in_use"
    w.baseline.signatures.update(expires_at=timezone.now() - timedelta(days=1))
    services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="slow")
    reissued = live_signature(w.baseline)
    assert reissued is not None and reissued.expires_at > timezone.now()


def test_a_failed_automatic_rollback_pauses_with_the_reason(world):
    w = build(world, sites=2, per_site=4)
    rollout, canary, wave = _canary_soaking(w)
    _field_data(w, rollout, canary, wave, candidate_latency=80.0)
    w.org.signing_keys.update(status="retired")  # nothing can re-issue the baseline
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    rollout.refresh_from_db()
    assert rollout.status == R.PAUSED
    assert "Automatic rollback failed" in rollout.hold_reason
    assert rollout.verdicts.filter(check_name="latency_p95", outcome="fail").exists()


def test_a_device_waiting_for_its_window_is_sent_the_version_before_completion(world):
    w = build(world, sites=2, per_site=2)
    closed = w.sites[1]
    closed.maintenance_windows = [{"day": 6, "start": "02:00", "end": "03:00"}]
    closed.time_zone = "UTC"
    closed.save()
    rollout = _approved(
        w, waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0, success_threshold=0.5)]
    )
    friday = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    engine.evaluate_rollouts(now=friday)
    _confirm(list(rollout.actions.filter(status=A.NOTIFIED)))
    engine.evaluate_rollouts(now=friday + timedelta(minutes=1))
    rollout.refresh_from_db()
    assert rollout.waves.get().status == W.DONE
    assert rollout.status == R.RUNNING  # two devices still wait for Sunday 02:00
    sunday = datetime(2027, 1, 3, 2, 30, tzinfo=UTC)
    engine.evaluate_rollouts(now=sunday)
    late = list(rollout.actions.filter(status=A.NOTIFIED))
    assert {a.site_id for a in late} == {closed.pk} and len(late) == 2
    _confirm(late)
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=1))
    rollout.refresh_from_db()
    assert rollout.status == R.COMPLETED


def test_rolling_back_an_older_rollout_leaves_devices_a_later_one_moved_on(world):
    w = build(world, sites=1, per_site=2)
    first = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)])
    engine.evaluate_rollouts()
    _confirm(list(first.actions.all()))
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=1))
    first.refresh_from_db()
    assert first.status == R.COMPLETED
    # A later, unrelated change of what one device runs (here: straight through the registry).
    from modelregistry import assignment_services

    moved = w.devices[0]
    assignment_services.assign_version(
        organization=w.org, model=w.model, version=w.baseline, device_ids=[moved.pk], actor=DEVICE
    )
    services.roll_back(rollout=first, actor=w.approver, role=Role.APPROVER, reason="late")
    mine = DeviceAssignment.objects.get(device=moved)
    assert mine.rollout_id is None and mine.purpose == "install"
    other = DeviceAssignment.objects.get(device=w.devices[1])
    assert other.purpose == "rollback" and other.version_id == w.baseline.pk


def test_abort_sends_devices_still_on_their_way_back(world):
    w = build(world, sites=1, per_site=3)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0)])
    engine.evaluate_rollouts()
    actions = list(rollout.actions.all())
    _confirm(actions[:1])  # installed: keeps the new version
    services.abort_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="stop")
    versions = dict(DeviceAssignment.objects.values_list("device_id", "version_id"))
    assert versions[actions[0].device_id] == w.candidate.pk
    assert {versions[a.device_id] for a in actions[1:]} == {w.baseline.pk}
    assert DeploymentAction.objects.filter(rollback_requested_at__isnull=False).count() == 2


def test_a_rollback_finishes_with_stragglers_after_the_deadline(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(
        w, waves=[WaveSpec(name="all", share_percent=100.0, device_deadline_minutes=30)]
    )
    engine.evaluate_rollouts()
    services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="slow")
    first, _second = rollout.actions.all()
    services.report_action_status(
        device=first.device, action_id=first.pk, status="rolled_back", actor=DEVICE
    )
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.rollback_finished_at is None  # the second device may still come back
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=31))
    rollout.refresh_from_db()
    assert rollout.rollback_stragglers == 1
    first.refresh_from_db()
    assert rollout.rollback_finished_at == first.rolled_back_at


def test_rejecting_a_rollout_whose_signature_expired_works(world):
    w = build(world, sites=1, per_site=2)
    rollout = _plan(w)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    w.candidate.signatures.update(expires_at=timezone.now() - timedelta(days=1))
    services.reject_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="old")
    rollout.refresh_from_db()
    assert rollout.status == R.REJECTED


def test_a_wave_without_a_soak_says_its_analysis_was_not_evaluated(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)])
    engine.evaluate_rollouts()
    _confirm(list(rollout.actions.all()))
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=1))
    wave = rollout.waves.get()
    assert wave.status == W.DONE
    assert "no canary analysis ran (not evaluated)" in wave.outcome
    assert not wave.verdicts.exists()


def test_accepting_an_inconclusive_wave_keeps_its_verdicts(world):
    w = build(world, sites=2, per_site=4)
    rollout, _, wave = _canary_soaking(w)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    wave.refresh_from_db()
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    round_two = dict(wave.verdicts.filter(round=2).values_list("check_name", "evaluated_at"))
    services.resume_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(minutes=5))
    wave.refresh_from_db()
    assert wave.status == W.DONE and "approver accepted" in wave.outcome
    after = dict(wave.verdicts.filter(round=2).values_list("check_name", "evaluated_at"))
    assert after == round_two


def test_reports_after_the_rollout_finished_change_nothing(world):
    w = build(world, sites=1, per_site=2)
    rollout = _approved(w, waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)])
    engine.evaluate_rollouts()
    _confirm(list(rollout.actions.all()))
    engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=1))
    rollout.refresh_from_db()
    assert rollout.status == R.COMPLETED
    action = rollout.actions.first()
    result = services.report_action_status(
        device=action.device, action_id=action.pk, status="failed", actor=DEVICE
    )
    assert result.changed is False and "completed" in result.note
    assert DeploymentAction.objects.get(pk=action.pk).status == A.HEALTHY


def test_windows_hold_across_daylight_saving_changes():
    from rollouts.windows import window_open

    spring_gap = [{"day": 6, "start": "02:00", "end": "02:30"}]  # skipped hour in Berlin
    # 2027-03-28: clocks go 02:00 CET → 03:00 CEST. The window becomes 03:00-03:30 CEST.
    assert window_open(spring_gap, "Europe/Berlin", datetime(2027, 3, 28, 1, 15, tzinfo=UTC))
    assert not window_open(spring_gap, "Europe/Berlin", datetime(2027, 3, 28, 1, 45, tzinfo=UTC))
    autumn = [{"day": 6, "start": "02:00", "end": "03:00"}]
    # 2027-10-31: 03:00 CEST → 02:00 CET; 02:00-03:00 wall clock covers both 02:xx hours.
    assert window_open(autumn, "Europe/Berlin", datetime(2027, 10, 31, 0, 30, tzinfo=UTC))
    assert window_open(autumn, "Europe/Berlin", datetime(2027, 10, 31, 1, 30, tzinfo=UTC))
    assert not window_open(autumn, "Europe/Berlin", datetime(2027, 10, 31, 2, 0, tzinfo=UTC))
