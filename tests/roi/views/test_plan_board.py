"""The plan board: dates from the start date, tasks ticked by their evidence, plain labels."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opshero.roles import Role
from roi import services
from roi.measurements import load_sources
from roi.models import Plan
from roi.plan import MeasureKey, Measurement, Provenance, register_source, registry
from tests.roi.builders import (
    SYSTEM,
    make_assessment,
    make_plan,
    make_scenario,
    make_scorecard,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
DASH = "\u2013"  # the board's date ranges: "2 Mar - 16 Mar 2026" with an en dash


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def page(client, world, plan, role=Role.VIEWER) -> str:
    client.force_login(world.a.user(role))
    response = client.get(url("plan", plan_id=plan.pk))
    assert response.status_code == 200
    return response.content.decode()


def card(body: str, task_id: str) -> str:
    """The HTML of one task card."""
    start = body.index(f'id="task-{task_id}"')
    end = body.find('<div id="task-', start + 1)
    return body[start : end if end != -1 else body.index('id="plan-metrics"', start)]


def start_on(plan, start: date) -> Plan:
    Plan.objects.filter(pk=plan.pk).update(start_date=start)
    plan.refresh_from_db()
    return plan


def no_hardware_plan(org, **kwargs):
    """A near-edge plan with no hardware yet: it has the "score the stacks" task."""
    return make_plan(org, assessment=make_assessment(org, existing_hardware=[]), **kwargs)


@pytest.fixture
def sources():
    """Register sources for one test and put the real ones back afterwards."""
    saved = {}
    load_sources()

    def add(key: str, source):
        slot = (key, Provenance.FIELD)
        if slot not in saved:
            saved[slot] = registry.source(key, provenance=Provenance.FIELD)
        register_source(key, provenance=Provenance.FIELD, overwrite=True)(source)

    yield add
    for (key, provenance), previous in saved.items():
        registry.unregister(key, provenance=provenance)
        if previous is not None:
            register_source(key, provenance=provenance)(previous)


def field(key: str, value: float, unit: str) -> Measurement:
    now = timezone.now()
    return Measurement(
        key=key,
        value=value,
        unit=unit,
        source="gateway telemetry",
        measured_at=now,
        provenance=Provenance.FIELD,
        sites=("Dock 1",),
        device_count=3,
        window_start=now - timedelta(days=2),
        window_end=now,
    )


# --- dates ---------------------------------------------------------------------------------------


def test_a_new_plan_starts_on_the_day_it_is_created(world):
    plan = make_plan(world.a.org)
    assert plan.start_date == timezone.localdate(plan.created_at)


def test_phases_and_tasks_show_their_calendar_dates(client, world):
    plan = start_on(make_plan(world.a.org), date(2026, 3, 2))
    body = page(client, world, plan)
    assert f'data-testid="plan-dates">2 Mar 2026 {DASH} 30 May 2026<' in body
    assert f'data-testid="phase-dates-days_1_15">2 Mar {DASH} 16 Mar 2026<' in body
    assert f'data-testid="phase-dates-days_71_90">11 May {DASH} 30 May 2026<' in body
    assert f"17 Mar {DASH} 31 Mar 2026 · days 16{DASH}30" in card(body, "select_runtime")
    assert f"11 May {DASH} 15 May 2026 · days 71{DASH}75" in card(body, "start_with_pilot_sites")


def test_tasks_past_their_dates_are_overdue_and_todays_are_current(client, world):
    today = timezone.localdate()
    plan = start_on(make_plan(world.a.org), today - timedelta(days=19))  # today is day 20
    body = page(client, world, plan)
    assert "Today is day 20 of 90." in body
    # Days 1-15 are over: the metrics task (in progress, not done) is overdue, the done ones not.
    assert 'data-timing="overdue"' in card(body, "define_success_metrics")
    assert ">Overdue<" in card(body, "define_success_metrics")
    assert 'data-timing="done"' in card(body, "pick_workflow")
    assert ">Due now<" in card(body, "select_runtime")  # days 16-30
    assert 'data-timing="upcoming"' in card(body, "test_offline")
    assert re.search(r'data-testid="plan-overdue">\d+ tasks? overdue<', body)


def test_a_plan_that_has_not_started_has_nothing_overdue(client, world):
    plan = start_on(make_plan(world.a.org), timezone.localdate() + timedelta(days=3))
    body = page(client, world, plan)
    assert "Starts in 3 days." in body
    assert 'data-timing="overdue"' not in body
    assert 'data-testid="plan-overdue"' not in body


def test_the_plan_list_shows_the_start_date(client, world):
    plan = start_on(make_plan(world.a.org), date(2026, 3, 2))
    client.force_login(world.a.user(Role.VIEWER))
    body = client.get(url("plans")).content.decode()
    assert f'data-testid="plan-start-{plan.pk}">2 Mar 2026<' in body


# --- evidence ------------------------------------------------------------------------------------


def test_scoring_two_stacks_ticks_the_scorecard_task_with_a_link(client, world):
    plan = no_hardware_plan(world.a.org)
    before = card(page(client, world, plan), "score_stacks_before_buying")
    assert "status-todo" in before and 'data-testid="evidence-' not in before
    # A scorecard for another assessment compared stacks for something else: it does not count.
    make_scorecard(world.a.org, name="Other", assessment=make_assessment(world.a.org))
    assert "status-todo" in card(page(client, world, plan), "score_stacks_before_buying")
    scorecard = make_scorecard(world.a.org, assessment=plan.assessment)
    after = card(page(client, world, plan), "score_stacks_before_buying")
    assert "status-done" in after
    link = url("scorecard", scorecard_id=scorecard.pk)
    assert f'<a href="{link}">Scorecard “Dock stacks” scores 3 candidate stacks.</a>' in after


def test_a_scorecard_with_one_stack_is_not_enough(client, world):
    from roi import services
    from tests.roi.builders import SYSTEM, candidates

    plan = no_hardware_plan(world.a.org)
    services.create_scorecard(
        organization=world.a.org,
        actor=SYSTEM,
        name="One stack",
        candidates=candidates()[:1],
        weights={},
        assessment=plan.assessment,
    )
    assert "status-todo" in card(page(client, world, plan), "score_stacks_before_buying")


def test_the_roi_task_ticks_only_once_a_field_measurement_replaces_an_assumption(
    client, world, sources
):
    plan = make_plan(world.a.org)
    assert "status-todo" in card(page(client, world, plan), "recompute_roi_with_measurements")
    scenario = make_scenario(world.a.org, assessment=plan.assessment)
    # A scenario alone is not "recomputed with measured values" (it used to tick on day 1).
    assert "status-todo" in card(page(client, world, plan), "recompute_roi_with_measurements")
    services.update_plan(plan=plan, actor=SYSTEM, scenario=scenario)
    assert "status-todo" in card(page(client, world, plan), "recompute_roi_with_measurements")
    sources(
        MeasureKey.OFFLINE_COVERAGE,
        lambda context: field(MeasureKey.OFFLINE_COVERAGE, 0.9, "share"),
    )
    after = card(page(client, world, plan), "recompute_roi_with_measurements")
    assert "status-done" in after
    assert url("scenario", scenario_id=scenario.pk) in after
    assert "recomputed with measured Share of the workflow completing offline" in after


def _model_with_run(world, status: str, name: str = "dock-detector"):
    from fleet.models import HardwareTarget
    from modelregistry.models import MlModel, ModelVersion, ValidationRun

    model = MlModel.objects.create(
        organization=world.a.org, name=name, owner=world.a.user(Role.APPROVER)
    )
    version = ModelVersion.objects.create(
        model=model,
        version="1.2",
        artifact=f"artifacts/{uuid.uuid4().hex}.onnx",
        file_name="model.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1024,
        metadata={"opset_imports": []},
    )
    ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.get(builtin_key="cpu"),
        number=1,
        status=status,
        report={"passed": status == "passed", "steps": []},
        report_digest=uuid.uuid4().hex * 2,
        finished_at=timezone.now(),
    )
    return model, version


def test_a_passed_validation_of_the_plans_model_ticks_the_conversion_task(client, world):
    plan = make_plan(world.a.org)
    failing, _ = _model_with_run(world, "failed", name="failing-detector")
    services.update_plan(plan=plan, actor=SYSTEM, model=failing)
    assert "status-todo" in card(page(client, world, plan), "select_runtime")
    model, version = _model_with_run(world, "passed")
    # Another model's passed run proves nothing about this plan's model.
    assert "status-todo" in card(page(client, world, plan), "select_runtime")
    services.update_plan(plan=plan, actor=SYSTEM, model=None)
    assert "status-todo" in card(page(client, world, plan), "select_runtime")
    services.update_plan(plan=plan, actor=SYSTEM, model=model)
    after = card(page(client, world, plan), "select_runtime")
    assert "status-done" in after
    assert "dock-detector 1.2 passed validation" in after
    assert reverse("modelregistry:version", kwargs={"org": "acme", "version_id": version.pk}) in (
        after
    )


def test_a_started_rollout_ticks_the_staged_release_task(client, world):
    from rollouts.models import Rollout

    plan = make_plan(world.a.org)
    model, version = _model_with_run(world, "passed")
    services.update_plan(plan=plan, actor=SYSTEM, model=model)

    def rollout(status):
        return Rollout.objects.create(
            organization=world.a.org,
            model=model,
            version=version,
            name=f"rollout {status}",
            status=status,
            seed=1,
            created_by=world.a.user(Role.APPROVER),
            submitted_at=timezone.now(),
        )

    rollout(Rollout.Status.DRAFT)
    assert "status-todo" in card(page(client, world, plan), "staged_releases")
    running = rollout(Rollout.Status.RUNNING)
    after = card(page(client, world, plan), "staged_releases")
    assert "status-done" in after
    assert "Staged rollout of dock-detector 1.2: running." in after
    assert reverse("rollouts:detail", kwargs={"org": "acme", "rollout_id": running.pk}) in after


def test_field_telemetry_ticks_the_field_like_tests(client, world, sources):
    plan = make_plan(world.a.org)
    body = page(client, world, plan)
    for task_id in ("capture_observability", "test_offline", "validate_power_thermal"):
        assert "status-todo" in card(body, task_id)
    sources(MeasureKey.LATENCY_P95_MS, lambda context: field(MeasureKey.LATENCY_P95_MS, 120, "ms"))
    sources(
        MeasureKey.FIELD_THROTTLED_SHARE,
        lambda context: field(MeasureKey.FIELD_THROTTLED_SHARE, 0.02, "share"),
    )
    body = page(client, world, plan)
    observability = card(body, "capture_observability")
    assert "status-done" in observability
    assert "Fleet telemetry: P95 time-to-action 120 ms (3 devices at Dock 1" in observability
    assert reverse("telemetry:health", kwargs={"org": "acme"}) in observability
    assert "status-done" in card(body, "validate_power_thermal")
    assert "status-todo" in card(body, "test_offline")  # no device has been offline yet


def throttling(sources) -> None:
    sources(
        MeasureKey.FIELD_THROTTLED_SHARE,
        lambda context: field(MeasureKey.FIELD_THROTTLED_SHARE, 0.02, "share"),
    )


def test_a_task_ticked_by_evidence_offers_no_status_choice_others_do(client, world, sources):
    plan = make_plan(world.a.org)
    throttling(sources)
    body = page(client, world, plan, role=Role.PLANNER)
    ticked = card(body, "validate_power_thermal")
    assert '<select name="status"' not in ticked
    assert '<select name="assignee"' in ticked
    assert '<select name="status"' in card(body, "select_runtime")


def test_counters_count_tasks_ticked_by_evidence_after_a_status_change(client, world, sources):
    plan = make_plan(world.a.org)
    done_stored, total = plan.progress
    throttling(sources)
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        url("plan-task", plan_id=plan.pk, task_id="select_runtime"), {"status": "done"}, **HX
    )
    body = response.content.decode()
    # the runtime task set by hand, plus the power/thermal task ticked by field throttling
    assert f'data-testid="plan-progress">{done_stored + 2} / {total}<' in body
    assert 'id="phase-count-days_71_90" hx-swap-oob="true"' not in body


def test_the_board_runs_a_fixed_number_of_queries_whatever_the_evidence(client, world):
    plan = no_hardware_plan(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url("plan", plan_id=plan.pk)).status_code == 200
        return len(ctx.captured_queries)

    make_scorecard(world.a.org, name="Stacks 0", assessment=plan.assessment)
    make_scenario(world.a.org, name="Scenario 0", assessment=plan.assessment)
    queries()
    few = queries()
    for index in range(1, 6):
        make_scorecard(world.a.org, name=f"Stacks {index}", assessment=plan.assessment)
        make_scenario(world.a.org, name=f"Scenario {index}", assessment=plan.assessment)
    assert queries() == few


# --- labels --------------------------------------------------------------------------------------


def _outside_details(body: str) -> str:
    """What a person reads: no <details> (folded), scripts or attribute values."""
    body = re.sub(r"<details.*?</details>|<script.*?</script>", "", body, flags=re.S)
    return re.sub(r'\s[\w:-]+="[^"]*"', "", body)


def test_the_page_names_no_raw_key_and_no_ruleset_outside_details(client, world, sources):
    sources(MeasureKey.LATENCY_P95_MS, lambda context: field(MeasureKey.LATENCY_P95_MS, 120, "ms"))
    plan = make_plan(world.a.org)
    body = page(client, world, plan, role=Role.PLANNER)
    visible = _outside_details(body)
    for key in MeasureKey:
        assert key.value not in visible, key.value
    assert "ruleset" not in visible.lower()
    # ...and the version is still there, behind "details".
    ruleset = plan.data["ruleset_version"]
    assert re.search(r"<details[^>]*><summary>details</summary>[^<]*" + re.escape(ruleset), body)
    assert "<code>latency.p95_ms</code> (field)" in body  # the keys, folded away
    summary = plan.assessment.result["summary"]
    assert f'text-secondary">{summary}</div>' in card(body, "decide_placement")
