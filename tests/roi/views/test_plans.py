"""The 90-day plan board: generation, HTMX task changes, targets, planned vs measured."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import Plan
from tests.roi.builders import make_assessment, make_plan, make_scenario

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def test_generate_a_plan_from_an_assessment_page(client, world):
    assessment = make_assessment(world.a.org)
    scenario = make_scenario(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        url("assessment-plan", assessment_id=assessment.pk), {"scenario": str(scenario.pk)}
    )
    plan = Plan.objects.get()
    assert response.url == url("plan", plan_id=plan.pk)
    assert plan.scenario == scenario
    body = client.get(response.url).content.decode()
    for title in (
        "Choose the architecture and success metrics",
        "Build a reference deployment",
        "Run field-like tests",
        "Ship a staged rollout",
    ):
        assert title in body
    assert "Provision site gateways" in body  # tailored to near-edge


def test_every_metric_says_not_measured_yet_until_a_source_reports(client, world):
    plan = make_plan(world.a.org, scenario=make_scenario(world.a.org))
    client.force_login(world.a.user(Role.VIEWER))
    body = client.get(url("plan", plan_id=plan.pk)).content.decode()
    states = re.findall(r'data-testid="metric-state-[a-z_0-9]+">([^<]+)<', body)
    assert len(states) == len(plan.data["metrics"]) == 9
    assert set(states) == {"Not measured yet"}
    # Validation sources are connected but this organisation has no validation run yet.
    assert "Connected measurement sources:" in body and "validation.ece" in body
    assert "9 not measured yet" in body
    # The ROI recompute shows both columns and says honestly that nothing was replaced.
    assert "Nothing measured replaces an assumption yet" in body


def test_task_status_changes_in_place_and_updates_the_counters(client, world):
    plan = make_plan(world.a.org)
    done_before, total = plan.progress
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        url("plan-task", plan_id=plan.pk, task_id="select_runtime"),
        {"status": "done", "assignee": ""},
        **HX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    card = 'id="task-select_runtime" class="card card-sm task-card status-done timing-done mb-2"'
    assert card in body
    assert f'data-testid="plan-progress">{done_before + 1} / {total}<' in body
    assert 'id="phase-count-days_16_45" hx-swap-oob="true"' in body
    plan.refresh_from_db()
    assert next(t for t in plan.tasks if t["id"] == "select_runtime")["status"] == "done"


def test_task_owner_is_set_and_must_be_a_member(client, world):
    plan = make_plan(world.a.org)
    approver = world.a.user(Role.APPROVER)
    client.force_login(world.a.user(Role.PLANNER))
    task_url = url("plan-task", plan_id=plan.pk, task_id="device_identity")
    response = client.post(task_url, {"assignee": str(approver.pk)}, **HX)
    assert f'<option value="{approver.pk}" selected>' in response.content.decode()
    outsider = world.b.user(Role.ADMIN)
    response = client.post(task_url, {"assignee": str(outsider.pk)}, **HX)
    assert response.status_code == 200
    assert "must be a member" in response.content.decode()
    plan.refresh_from_db()
    assert plan.assignees == {"device_identity": approver.pk}


def test_unknown_task_is_404(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    assert client.post(url("plan-task", plan_id=plan.pk, task_id="nope"), {}).status_code == 404


def test_targets_are_saved_in_place_and_bad_ones_keep_the_typing(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    good = {
        "latency_p95_ms": "120",
        "accuracy_pct": "93",
        "int8_accuracy_drop_points": "1",
        "operator_coverage_pct": "98",
        "ece": "0.05",
        "time_to_diagnose_hours": "4",
    }
    response = client.post(url("plan-targets", plan_id=plan.pk), good, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="target-latency_p95">≤ 120 ms<' in body
    assert 'data-testid="target-accuracy">≥ 93 %<' in body
    response = client.post(
        url("plan-targets", plan_id=plan.pk), {**good, "accuracy_pct": "130"}, **HX
    )
    assert response.status_code == 200
    assert 'data-testid="targets-saved"' not in response.content.decode()
    body = response.content.decode()
    assert 'value="130"' in body
    assert "less than or equal to 100" in body
    plan.refresh_from_db()
    assert plan.targets["accuracy"] == 0.93


def test_viewer_sees_the_board_read_only_and_cannot_change_it(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    body = client.get(url("plan", plan_id=plan.pk)).content.decode()
    assert 'data-testid="status-select_runtime"' not in body
    assert 'data-testid="targets-form"' not in body
    for name, data in (
        ("plan-task", {"status": "done"}),
        ("plan-targets", {"accuracy_pct": "90"}),
        ("plan-scenario", {"scenario": ""}),
        ("plan-delete", {}),
    ):
        kwargs = {"plan_id": plan.pk}
        if name == "plan-task":
            kwargs["task_id"] = "select_runtime"
        assert client.post(url(name, **kwargs), data).status_code == 403, name
    plan.refresh_from_db()
    assert next(t for t in plan.tasks if t["id"] == "select_runtime")["status"] == "todo"


def test_plan_of_another_organisation_is_404(client, world):
    foreign = make_plan(world.b.org)
    client.force_login(world.a.user(Role.ADMIN))
    assert client.get(url("plan", plan_id=foreign.pk)).status_code == 404
    task_url = url("plan-task", plan_id=foreign.pk, task_id="select_runtime")
    assert client.post(task_url, {"status": "done"}).status_code == 404


def test_link_and_unlink_the_roi_scenario(client, world):
    plan = make_plan(world.a.org)
    scenario = make_scenario(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    client.post(url("plan-scenario", plan_id=plan.pk), {"scenario": str(scenario.pk)})
    plan.refresh_from_db()
    assert plan.scenario == scenario
    foreign = make_scenario(world.b.org)
    response = client.post(url("plan-scenario", plan_id=plan.pk), {"scenario": str(foreign.pk)})
    assert response.status_code == 404
    client.post(url("plan-scenario", plan_id=plan.pk), {"scenario": ""})
    plan.refresh_from_db()
    assert plan.scenario is None
