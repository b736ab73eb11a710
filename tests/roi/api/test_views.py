"""The planning API: shapes, validation errors, permissions, conflicts, stateless compute."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opshero.models import AuditEvent
from opshero.roles import Role
from roi.models import Assessment, Plan, RoiScenario
from tests.roi.builders import (
    candidates,
    dock_answers,
    logistics_inputs,
    make_assessment,
    make_plan,
    make_scenario,
    make_scorecard,
)

pytestmark = pytest.mark.django_db


def api(name: str, org: str = "acme", **kwargs) -> str:
    return reverse(name, kwargs={"org": org, **kwargs})


def test_create_and_read_an_assessment(api_as, world):
    client = api_as(world.a.user(Role.PLANNER))
    response = client.post(
        api("api-roi-assessments"), {"name": "Docks", "answers": dock_answers()}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["placement"] == "near_edge"
    assert body["result"]["architecture"]["key"] == "logistics_dock_vision"
    assert body["created_by"] == world.a.user(Role.PLANNER).username
    listing = client.get(api("api-roi-assessments")).json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == body["id"]


def test_bad_answers_are_422_with_fields(api_as, world):
    client = api_as(world.a.user(Role.PLANNER))
    answers = dock_answers(offline_share=3, sites=0)
    response = client.post(api("api-roi-assessments"), {"answers": answers}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert set(error["fields"]) == {"offline_share", "sites"}
    assert Assessment.objects.count() == 0


def test_decide_saves_nothing_and_any_member_may(api_as, world):
    client = api_as(world.a.user(Role.VIEWER))
    response = client.post(
        api("api-roi-assessment-decide"),
        {"answers": dock_answers(phi_involved=True, privacy_risk="low")},
        format="json",
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert "cloud" not in result["inference_tiers"]  # PHI keeps inference local
    assert "risk.phi_answered_low" in {risk["id"] for risk in result["risks"]}
    assert Assessment.objects.count() == 0


def test_viewer_cannot_write(api_as, world):
    assessment = make_assessment(world.a.org)
    client = api_as(world.a.user(Role.VIEWER))
    response = client.post(api("api-roi-assessments"), {"answers": dock_answers()}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    url = api("api-roi-assessment", assessment_id=assessment.pk)
    assert client.patch(url, {"name": "x"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    assert Assessment.objects.get().name == "Dock assessment"


def test_objects_of_another_organisation_are_404(api_as, world):
    foreign = make_plan(world.b.org)
    client = api_as(world.a.user(Role.ADMIN))
    response = client.get(api("api-roi-plan", plan_id=foreign.pk))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # ...and cannot be referenced from a body either.
    response = client.post(
        api("api-roi-plans"), {"assessment": foreign.assessment_id}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"assessment": ["Not found."]}


def test_assessment_rename_keeps_the_decision(api_as, world):
    assessment = make_assessment(world.a.org)
    client = api_as(world.a.user(Role.PLANNER))
    url = api("api-roi-assessment", assessment_id=assessment.pk)
    response = client.patch(url, {"name": "Renamed"}, format="json")
    assert response.json()["name"] == "Renamed"
    assert response.json()["result"] == assessment.result


def test_delete_assessment_with_a_plan_is_409(api_as, world):
    plan = make_plan(world.a.org)
    client = api_as(world.a.user(Role.PLANNER))
    response = client.delete(api("api-roi-assessment", assessment_id=plan.assessment_id))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "assessment_in_use"


def test_scorecard_create_rank_and_stale_patch(api_as, world):
    client = api_as(world.a.user(Role.PLANNER))
    response = client.post(
        api("api-roi-scorecards"), {"name": "Stacks", "candidates": candidates()}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    ranking = body["ranking"]
    assert [row["candidate"]["name"] for row in ranking] == [
        "Jetson Orin gateway",
        "Cloud vision API",
        "Handheld NPU only",
    ]
    handheld = next(r for r in ranking if r["candidate"]["name"] == "Handheld NPU only")
    assert not handheld["supportable"]
    assert {flag["category"] for flag in handheld["red_flags"]} == {
        "update_strategy",
        "observability",
    }
    url = api("api-roi-scorecard", scorecard_id=body["id"])
    assert client.patch(url, {"name": "v2", "revision": 1}, format="json").status_code == 200
    response = client.patch(url, {"name": "v3", "revision": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stale_revision"


def test_scorecard_bad_score_names_the_cell(api_as, world):
    stacks = candidates()
    stacks[1]["scores"]["offline"]["score"] = 7
    client = api_as(world.a.user(Role.PLANNER))
    response = client.post(api("api-roi-scorecards"), {"candidates": stacks}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "candidates[1].scores.offline": ["7 is outside 1-5."]
    }


def test_compute_is_stateless_and_returns_every_figure(api_as, world):
    client = api_as(world.a.user(Role.VIEWER))
    response = client.post(
        api("api-roi-scenario-compute"),
        {"inputs": logistics_inputs(), "draws": 2000, "placement": "cloud"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body["summary"]["placements"]) == {"on_device", "near_edge", "cloud", "hybrid"}
    for figures in body["summary"]["placements"].values():
        assert figures["npv_p10"] <= figures["npv_p50"] <= figures["npv_p90"]
    assert body["analysis"]["monte_carlo"]["draws"] == 2000
    assert body["analysis"]["tornado"]["placement"] == "cloud"
    assert RoiScenario.objects.count() == 0


def test_compute_reports_bad_inputs_and_limits(api_as, world):
    client = api_as(world.a.user(Role.PLANNER))
    inputs = logistics_inputs()
    inputs["estimates"]["offline.completes_offline.cloud"]["high"] = 1.5
    del inputs["estimates"]["tco.bandwidth_per_site.hybrid"]
    response = client.post(api("api-roi-scenario-compute"), {"inputs": inputs}, format="json")
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert "a share is between 0 and 1" in fields["offline.completes_offline.cloud"][0]
    assert fields["tco.bandwidth_per_site.hybrid"] == ["This estimate is required."]
    response = client.post(
        api("api-roi-scenario-compute"), {"workflow": "custom", "draws": 10**7}, format="json"
    )
    assert response.status_code == 400
    assert "draws" in response.json()["error"]["fields"]


def test_presets_and_saving_a_preset(api_as, world):
    client = api_as(world.a.user(Role.PLANNER))
    preset = client.get(api("api-roi-scenario-preset", workflow="healthcare_decision_support"))
    assert preset.status_code == 200
    estimates = preset.json()["inputs"]["estimates"]
    assert all(estimate["source"] for estimate in estimates.values())  # every default sourced
    assert client.get(api("api-roi-scenario-preset", workflow="custom")).status_code == 404
    response = client.post(
        api("api-roi-scenarios"),
        {"name": "Clinics", "workflow": "healthcare_decision_support"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["summary"]["best_placement"] == response.json()["best_placement"]
    clone = client.post(
        api("api-roi-scenario-clone", scenario_id=response.json()["id"]), {}, format="json"
    )
    assert clone.status_code == 201
    assert clone.json()["cloned_from"] == response.json()["id"]


def test_plan_create_detail_and_task_updates(api_as, world):
    assessment = make_assessment(world.a.org)
    scenario = make_scenario(world.a.org)
    client = api_as(world.a.user(Role.PLANNER))
    response = client.post(
        api("api-roi-plans"),
        {"assessment": assessment.pk, "scenario": scenario.pk, "targets": {"ece": 0.03}},
        format="json",
    )
    assert response.status_code == 201
    plan_id = response.json()["id"]
    detail = client.get(api("api-roi-plan", plan_id=plan_id)).json()
    states = {item["metric"]["key"]: item["state"] for item in detail["measured"]["metrics"]}
    assert set(states.values()) == {"not_measured"}
    connected = {
        (item["key"], item["provenance"]) for item in detail["measured"]["connected_sources"]
    }
    assert connected == {
        ("latency.p95_ms", "lab"),
        ("validation.accuracy", "lab"),
        ("validation.int8_accuracy_drop_points", "lab"),
        ("validation.operator_coverage", "lab"),
        ("validation.ece", "lab"),
        # Field sources read the fleet's telemetry; with none they report nothing.
        ("latency.p95_ms", "field"),
        ("offline.coverage_share", "field"),
        ("validation.accuracy", "field"),
        ("support.time_to_diagnose_hours", "field"),
        ("field.inference_p95_ms", "field"),
        ("field.throttled_share", "field"),
        # Rollout sources read finished rollouts; with none they report nothing.
        ("rollout.duration_hours", "field"),
        ("rollout.rollback_minutes", "field"),
        # Review sources read reviewed cases; with none they report nothing.
        ("validation.ece", "field"),
    }
    assert detail["measured"]["field_measurements"] == []  # no telemetry in this organisation
    decided = {item["metric"]["key"]: item["decided_by"] for item in detail["measured"]["metrics"]}
    assert decided["latency_p95"] == "field" and decided["operator_coverage"] == "lab"
    assert detail["measured"]["roi"]["replaced"] == []
    ece = next(m for m in detail["data"]["metrics"] if m["key"] == "calibration_ece")
    assert ece["target"] == 0.03
    task_url = api("api-roi-plan-task", plan_id=plan_id, task_id="staged_releases")
    response = client.patch(
        task_url, {"status": "doing", "assignee": world.a.user(Role.APPROVER).pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["assignees"] == {"staged_releases": world.a.user(Role.APPROVER).pk}
    response = client.patch(task_url, {"assignee": world.b.user(Role.ADMIN).pk}, format="json")
    assert response.status_code == 422
    response = client.patch(task_url, {"status": "finished"}, format="json")
    assert response.status_code == 400
    assert (
        client.patch(
            api("api-roi-plan-task", plan_id=plan_id, task_id="nope"),
            {"status": "done"},
            format="json",
        ).status_code
        == 404
    )
    plan = Plan.objects.get()
    assert next(t for t in plan.tasks if t["id"] == "staged_releases")["status"] == "doing"
    assert AuditEvent.objects.filter(verb="plan.task_status_changed").count() == 1


def test_plan_patch_targets_and_scenario(api_as, world):
    plan = make_plan(world.a.org)
    scenario = make_scenario(world.a.org)
    client = api_as(world.a.user(Role.PLANNER))
    url = api("api-roi-plan", plan_id=plan.pk)
    response = client.patch(
        url, {"targets": {"rollback_minutes": 15}, "scenario": scenario.pk}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    rollback = next(m for m in body["data"]["metrics"] if m["key"] == "rollback_time")
    assert rollback["target"] == 15 and body["scenario"] == scenario.pk
    response = client.patch(url, {"targets": {"ece": 2}}, format="json")
    assert response.status_code == 422
    assert "ece" in response.json()["error"]["fields"]


def test_scorecard_list_is_scoped(api_as, world):
    make_scorecard(world.a.org, name="Ours")
    make_scorecard(world.b.org, name="Theirs")
    client = api_as(world.a.user(Role.VIEWER))
    names = [row["name"] for row in client.get(api("api-roi-scorecards")).json()["results"]]
    assert names == ["Ours"]


@pytest.mark.parametrize("answers", [["workflow"], "logistics_dock_vision", 3, None])
def test_assessment_answers_that_are_not_an_object_are_422_like_decide(api_as, world, answers):
    client = api_as(world.a.user(Role.PLANNER))
    for name in ("api-roi-assessments", "api-roi-assessment-decide"):
        response = client.post(api(name), {"answers": answers}, format="json")
        assert response.status_code in (400, 422), (name, response.content)
        assert "answers" in response.json()["error"]["fields"], name
    assert Assessment.objects.count() == 0


@pytest.mark.parametrize("entry", [["Jetson"], "Jetson", 7])
def test_scorecard_candidates_that_are_not_objects_are_422_naming_the_entry(api_as, world, entry):
    client = api_as(world.a.user(Role.PLANNER))
    stacks = [candidates()[0], entry]
    response = client.post(api("api-roi-scorecards"), {"candidates": stacks}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"] == {
        "candidates[1]": ["A candidate must be an object with a name and scores."]
    }
    scorecard = make_scorecard(world.a.org)
    url = api("api-roi-scorecard", scorecard_id=scorecard.pk)
    response = client.patch(url, {"candidates": stacks}, format="json")
    assert response.status_code == 422, response.content
    assert "candidates[1]" in response.json()["error"]["fields"]
