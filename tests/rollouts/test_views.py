"""The rollout pages: wizard and preview, approval queue, rollout page and controls, the
device page's rollouts panel."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from fleet.models import Device
from opshero.roles import Role
from rollouts import services
from rollouts.forms import wave_initial
from rollouts.models import CanaryVerdict, DeploymentAction, Rollout
from tests.factories import make_device
from tests.rollouts.fleet import build

pytestmark = pytest.mark.django_db


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"rollouts:{name}", kwargs={"org": org.slug, **kwargs})


def _plan(w, **overrides) -> dict:
    """The wizard's POST as a browser sends it: defaults filled in, the wave table included."""
    rows = wave_initial()
    data = {
        "name": "dock damage 1.1",
        "version": w.candidate.pk,
        "sites": [s.pk for s in w.sites],
        "canary_sites": [w.sites[0].pk],
        "latency_budget_pct": 20,
        "max_confidence_drop": 0.05,
        "max_class_shift": 0.1,
        "max_low_confidence_increase": 0.05,
        "max_throttling_increase": 0.05,
        "max_failed_load_share": 0.05,
        "min_events": 200,
        "device_soak_minutes": 5,
        "auto_rollback": "on",
        "seed": 7,
        "wave-TOTAL_FORMS": len(rows) + 1,
        "wave-INITIAL_FORMS": 0,
        "wave-MIN_NUM_FORMS": 0,
        "wave-MAX_NUM_FORMS": 8,
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"wave-{index}-{key}"] = "" if value is None else value
    data.update(overrides)
    return data


def _draft(w, *, by=None) -> Rollout:
    return services.create_rollout(
        organization=w.org,
        actor=by or w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[s.pk for s in w.sites],
        canary_site_ids=[w.sites[0].pk],
        seed=7,
    )


def _pending(w) -> Rollout:
    rollout = _draft(w)
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    rollout.refresh_from_db()
    return rollout


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_wizard_preview_shows_wave_counts_and_an_exclusion_with_its_reason(world, login):
    w = build(world)
    make_device(
        w.org,
        site=w.sites[1],
        name="no-target-cam",
        status=Device.Status.ACTIVE,
        hardware_target=None,
        runtime_version="onnxruntime 1.20.1",
    )
    client = login(w.planner.user)
    page = client.get(_url("new", w.org))
    assert page.status_code == 200
    assert "signed, release" in page.content.decode()
    response = client.post(_url("preview", w.org), _plan(w), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="preview-waves"' in body
    # 12 eligible devices; the canary is Dock 1 minus the device kept on the known-good version.
    canary = w.devices_at(w.sites[0])
    assert f'<td class="text-end" data-testid="wave-devices">{len(canary) - 1}</td>' in body
    assert '<strong data-testid="preview-eligible">12 devices</strong>' in body
    assert "no-target-cam" in body
    assert "no hardware target set, so no validation covers it" in body
    assert Rollout.objects.count() == 0


def test_create_draft_redirects_to_the_rollout_page(world, login):
    w = build(world)
    client = login(w.planner.user)
    response = client.post(_url("new", w.org), _plan(w))
    rollout = Rollout.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _url("detail", w.org, rollout_id=rollout.pk)
    assert rollout.status == Rollout.Status.DRAFT
    assert rollout.created_by == w.planner.user
    assert rollout.seed == 7
    assert rollout.name == "dock damage 1.1"
    assert rollout.analysis_settings["auto_rollback"] is True
    assert list(rollout.waves.values_list("name", flat=True)) == ["Canary", "10 %", "50 %", "100 %"]
    page = client.get(response["Location"])
    assert 'data-control="submit"' in page.content.decode()


def test_bad_input_shows_inline_errors_and_keeps_what_was_typed(world, login):
    w = build(world)
    client = login(w.planner.user)
    response = client.post(
        _url("new", w.org),
        _plan(w, sites=[], canary_sites=[s.pk for s in w.sites], name="keep this name"),
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert "Choose at least one site or device group to roll out to." in body
    assert "Choose one or two canary sites, not more." in body
    assert 'value="keep this name"' in body
    assert 'name="wave-1-share_percent" value="10.0"' in body
    assert Rollout.objects.count() == 0


def test_an_overlapping_rollout_is_refused_inline(world, login):
    w = build(world)
    first = _draft(w)
    client = login(w.planner.user)
    preview = client.post(_url("preview", w.org), _plan(w), HTTP_HX_REQUEST="true")
    assert f"#{first.pk} {first.name}" in preview.content.decode()
    response = client.post(_url("new", w.org), _plan(w))
    assert response.status_code == 422
    assert f"rollout #{first.pk}" in response.content.decode()
    assert Rollout.objects.count() == 1


def test_creator_cannot_approve_a_second_approver_can(world, login):
    w = build(world)
    rollout = _pending(w)
    url = _url("control", w.org, rollout_id=rollout.pk, verb="approve")
    client = login(w.planner.user)
    page = client.get(_url("detail", w.org, rollout_id=rollout.pk)).content.decode()
    assert 'data-control="approve"' not in page
    assert "Another approver must approve" in page
    response = client.post(url, follow=True)
    assert any("Four-eyes" in m for m in _messages(response))
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PENDING_APPROVAL

    client = login(w.approver.user)
    response = client.post(url, {"next": "approvals"})
    assert response.status_code == 302
    assert response["Location"] == _url("approvals", w.org)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.APPROVED
    page = client.get(_url("detail", w.org, rollout_id=rollout.pk)).content.decode()
    assert w.candidate.sha256 in page  # the pinned artifact digest in the approval box


def test_reject_without_a_reason_is_refused(world, login):
    w = build(world)
    rollout = _pending(w)
    url = _url("control", w.org, rollout_id=rollout.pk, verb="reject")
    client = login(w.approver.user)
    response = client.post(url, {"reason": "  "}, follow=True)
    assert "A rejection needs a reason." in _messages(response)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PENDING_APPROVAL
    client.post(url, {"reason": "latency on dock 2 looks off"})
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.REJECTED
    assert rollout.approvals.get().reason == "latency on dock 2 looks off"


def test_approval_queue_shows_what_changed_and_four_eyes(world, login):
    w = build(world)
    rollout = _pending(w)
    body = login(w.approver.user).get(_url("approvals", w.org)).content.decode()
    assert f'data-rollout="{rollout.pk}"' in body
    assert "What changes from <strong>1.0.0</strong>" in body  # the version the fleet runs
    assert "Opsets" in body
    assert "b" * 12 in body  # the candidate's passed run report digest
    assert 'data-control="approve"' in body
    body = login(w.planner.user).get(_url("approvals", w.org)).content.decode()
    assert 'data-control="approve"' not in body
    assert "Another approver must approve" in body
    listing = login(w.approver.user).get(_url("list", w.org)).content.decode()
    assert 'data-testid="waiting-for-approval"' in listing
    assert 'data-testid="nav-rollouts-pending">1</span>' in listing


def test_viewer_sees_no_controls_and_posts_are_forbidden(world, login):
    w = build(world)
    rollout = _pending(w)
    client = login(world.a.user(Role.VIEWER))
    page = client.get(_url("detail", w.org, rollout_id=rollout.pk))
    assert page.status_code == 200
    assert 'data-testid="rollout-controls"' not in page.content.decode()
    for verb in ("approve", "withdraw", "pause", "abort"):
        response = client.post(_url("control", w.org, rollout_id=rollout.pk, verb=verb))
        assert response.status_code == 403, verb
    assert client.get(_url("new", w.org)).status_code == 403
    assert client.post(_url("preview", w.org), _plan(w)).status_code == 403
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PENDING_APPROVAL


def test_another_organisations_rollout_is_404(world, login):
    w = build(world)
    rollout = _pending(w)
    outsider = login(world.b.user(Role.ADMIN))
    other = world.b.org
    assert outsider.get(_url("detail", other, rollout_id=rollout.pk)).status_code == 404
    response = outsider.post(_url("control", other, rollout_id=rollout.pk, verb="withdraw"))
    assert response.status_code == 404
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PENDING_APPROVAL


def test_live_fragment_renders_verdicts_and_measures(world, login):
    w = build(world)
    rollout = _draft(w)
    wave = rollout.waves.get(number=0)
    now = timezone.now()
    CanaryVerdict.objects.create(
        rollout=rollout,
        wave=wave,
        round=1,
        check_name="latency_p95",
        outcome="fail",
        summary="P95 latency is 41 % above the baseline's, past the 20 % budget.",
        figures={"ratio": 1.41, "ratio_interval": [1.3, 1.52], "budget_pct": 20.0},
        baseline="peers",
        window_start=now,
        window_end=now,
    )
    action = rollout.actions.filter(wave=wave).first()
    DeploymentAction.objects.filter(pk=action.pk).update(
        status="failed", reason_code="health_check_failed"
    )
    client = login(w.approver.user)
    response = client.get(_url("detail", w.org, rollout_id=rollout.pk), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.startswith('<div id="rollout-live"') or "<html" not in body
    assert 'data-check="latency_p95" data-outcome="fail"' in body
    assert "41 % above the baseline" in body
    assert "[1.3, 1.52]" in body
    assert "<code>health_check_failed</code> 1" in body
    assert 'data-testid="rollback-waiting">0<' in body
    assert "hx-trigger" not in body  # a draft is not polled


def test_device_page_shows_the_assignment_and_deployment_history(world, login):
    w = build(world)
    rollout = _draft(w)
    device = w.devices[0]
    body = (
        login(w.approver.user)
        .get(reverse("fleet:device", kwargs={"org": w.org.slug, "device_id": device.pk}))
        .content.decode()
    )
    assert 'data-testid="device-rollouts"' in body
    assert "none assigned" not in body
    assert "1.0.0" in body  # the baseline every device is assigned
    assert rollout.name in body
    assert _url("detail", w.org, rollout_id=rollout.pk) in body


def test_device_page_flags_a_version_it_was_never_assigned(world, login):
    w = build(world)
    device = w.devices[0]
    Device.objects.filter(pk=device.pk).update(reported_model_version="c" * 64)
    body = (
        login(w.approver.user)
        .get(reverse("fleet:device", kwargs={"org": w.org.slug, "device_id": device.pk}))
        .content.decode()
    )
    assert 'data-testid="unassigned-version"' in body
    assert "c" * 16 in body


def test_a_running_rollout_is_polled_and_can_be_paused_and_rolled_back(world, login):
    from rollouts import engine

    w = build(world)
    rollout = _pending(w)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
    engine.evaluate_rollouts()
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING
    client = login(w.approver.user)
    detail = _url("detail", w.org, rollout_id=rollout.pk)
    page = client.get(detail).content.decode()
    for verb in ("pause", "advance", "abort", "roll-back"):
        assert f'data-control="{verb}"' in page, verb
    assert 'data-control="resume"' not in page
    assert 'hx-trigger="every 2s"' in page
    client.post(_url("control", w.org, rollout_id=rollout.pk, verb="pause"), {"reason": "checking"})
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.PAUSED
    page = client.get(detail).content.decode()
    assert 'data-control="resume"' in page
    assert 'data-testid="hold-reason"' in page
    response = client.post(
        _url("control", w.org, rollout_id=rollout.pk, verb="roll-back"),
        {"wave": 0, "reason": "probe"},
        follow=True,
    )
    assert response.status_code == 200
    assert rollout.waves.get(number=0).status == "failed"
    assert "re-issued manifest" in " ".join(_messages(response))
