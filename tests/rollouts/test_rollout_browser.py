"""The issue's "done means" in a real browser: an approver plans a rollout of a signed model,
a second approver approves it, waves advance as simulated devices report, a slower version is
paused by the canary analysis and rolled back, and the page shows rollout and rollback times.

The engine runs in this process with a controlled clock (its beat task is the same function,
tested with a real worker and beat in test_rollout_e2e); the devices report through the same
service the device API calls, and their field data is written as the minute rollups the
ingest pipeline would build."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from opshero.actors import Actor
from rollouts import engine, services
from rollouts.models import DeploymentAction, Rollout
from tests.conftest import browser_login
from tests.factories import PASSWORD
from tests.rollouts.fleet import build
from tests.rollouts.telemetry_rows import write_minutes

pytestmark = pytest.mark.django_db(transaction=True)
DEVICE = Actor.system("simulated gateway")


def _report(actions, *statuses, inferences=25):
    for action in actions:
        for status in statuses:
            services.report_action_status(
                device=action.device,
                action_id=action.pk,
                status=status,
                inferences_served=inferences,
                actor=DEVICE,
            )


def test_plan_approve_watch_waves_and_see_a_slow_version_rolled_back(
    page_factory, live_server, world
):
    with transaction.atomic():
        w = build(world, sites=2, per_site=4)
    page, watch = page_factory()
    page.on("dialog", lambda dialog: dialog.accept())
    org = w.org.slug

    # An approver plans the rollout in the wizard.
    browser_login(page, live_server, w.planner.user.username, PASSWORD)
    page.goto(f"{live_server.url}/o/{org}/rollouts/new/")
    page.select_option("select[name=version]", str(w.candidate.pk))
    for site in w.sites:
        page.check(f"[data-testid=target-sites] input[value='{site.pk}']")
    page.check(f"[data-testid=canary-sites] input[value='{w.sites[0].pk}']")
    page.click("[data-testid=preview-button]")
    expect(page.locator("text=Canary").first).to_be_visible()
    with page.expect_navigation():
        page.click("[data-testid=create-draft]")
    rollout = Rollout.objects.get()
    assert page.url.endswith(f"/rollouts/{rollout.pk}/")
    with page.expect_navigation():
        page.click("form[data-control=submit] button")
    expect(page.locator("text=Pending approval").first).to_be_visible()

    # A second approver approves it from the queue.
    second = page_factory()[0]
    second.on("dialog", lambda dialog: dialog.accept())
    browser_login(second, live_server, w.approver.user.username, PASSWORD)
    second.goto(f"{live_server.url}/o/{org}/rollouts/approvals/")
    with second.expect_navigation():
        second.click("form[data-control=approve] button")
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.APPROVED

    # Beat's engine starts it; the canary's devices install and confirm.
    engine.evaluate_rollouts()
    canary = list(DeploymentAction.objects.filter(rollout=rollout, wave__number=0))
    assert len(canary) == 3
    _report(canary, "downloading", "installed")
    # They installed six minutes ago (past the 5-minute device soak) and confirm serving now.
    DeploymentAction.objects.filter(pk__in=[a.pk for a in canary]).update(
        installed_at=timezone.now() - timedelta(minutes=6)
    )
    _report(canary, "healthy")
    soak_start = timezone.now() + timedelta(minutes=1)
    engine.evaluate_rollouts(now=soak_start)
    second.goto(f"{live_server.url}/o/{org}/rollouts/{rollout.pk}/")
    expect(second.locator("text=Soaking").first).to_be_visible()

    # The field says the new version is twice as slow as its peers on the old one.
    wave = rollout.waves.get(number=0)
    peers = DeploymentAction.objects.filter(
        rollout=rollout, status="pending", site_id=w.sites[0].pk
    )
    for action in canary:
        write_minutes(
            org=w.org,
            device=action.device,
            version=w.candidate,
            start=wave.soak_started_at,
            minutes=32,
            latency_ms=80.0,
        )
    for action in peers:
        write_minutes(
            org=w.org,
            device=action.device,
            version=w.baseline,
            start=wave.soak_started_at,
            minutes=32,
            latency_ms=40.0,
            per_minute=60,
        )
    engine.evaluate_rollouts(now=wave.soak_until + timedelta(seconds=1))
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.ROLLED_BACK
    _report(canary, "rolled_back")
    engine.evaluate_rollouts()

    second.goto(f"{live_server.url}/o/{org}/rollouts/{rollout.pk}/")
    expect(second.locator("text=Rolled back").first).to_be_visible()
    expect(second.locator("text=latency_p95").or_(second.locator("text=P95")).first).to_be_visible()
    expect(second.locator("text=budget +20").first).to_be_visible()
    expect(second.locator("text=Rollback time").first).to_be_visible()
    rollout.refresh_from_db()
    assert rollout.rollback_finished_at is not None
    watch.assert_clean()
