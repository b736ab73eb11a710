"""Planning services: what they save, the audit trail, and what they refuse."""

from __future__ import annotations

import pytest

from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from roi import services
from roi.models import Assessment, Plan, RoiScenario
from roi.plan import TaskStatus
from roi.rules import RULESET_VERSION
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


def _actor(world):
    return Actor.for_user(world.a.user(Role.PLANNER))


def test_create_assessment_stores_answers_result_and_audit(world):
    assessment = services.create_assessment(
        organization=world.a.org,
        actor=_actor(world),
        answers=dock_answers(model_changes_per_year="quarterly"),
        name="Docks",
    )
    assessment.refresh_from_db()
    # 150 ms, shared gateway, Jetson boxes, quarterly changes, medium privacy -> near-edge.
    assert assessment.placement == "near_edge"
    assert assessment.result["inference_tiers"] == ["near_edge"]
    assert assessment.answers["model_changes_per_year"] == 4.0  # the label was parsed
    assert assessment.ruleset_version == RULESET_VERSION
    assert assessment.created_by == world.a.user(Role.PLANNER)
    event = AuditEvent.objects.get(verb="assessment.created")
    assert event.organization == world.a.org
    assert event.target_id == str(assessment.pk)
    assert event.data["placement"] == "near_edge"


def test_create_assessment_reports_every_bad_answer_by_field(world):
    answers = dock_answers(latency_tolerance_ms=-5, privacy_risk="extreme")
    del answers["workflow"]
    with pytest.raises(InvalidInput) as caught:
        services.create_assessment(organization=world.a.org, actor=_actor(world), answers=answers)
    assert set(caught.value.fields) >= {"workflow", "privacy_risk"}
    assert Assessment.objects.count() == 0
    assert not AuditEvent.objects.filter(verb="assessment.created").exists()


def test_default_assessment_name_names_the_workflow(world):
    assessment = services.create_assessment(
        organization=world.a.org, actor=_actor(world), answers=dock_answers()
    )
    assert assessment.name.startswith("Logistics: dock vision · ")


def test_delete_assessment_refuses_while_a_plan_depends_on_it(world):
    plan = make_plan(world.a.org, name="Pilot plan")
    with pytest.raises(Conflict) as caught:
        services.delete_assessment(assessment=plan.assessment, actor=_actor(world))
    assert "Pilot plan" in caught.value.message
    assert Assessment.objects.filter(pk=plan.assessment_id).exists()


def test_scorecard_is_normalised_and_ranked_on_save(world):
    scorecard = make_scorecard(world.a.org)
    assert [c["name"] for c in scorecard.candidates] == [
        "Jetson Orin gateway",
        "Handheld NPU only",
        "Cloud vision API",
    ]
    assert scorecard.weights["update_strategy"] == 1.5
    assert scorecard.weights["security"] == 1.0  # unspecified weights default to 1
    event = AuditEvent.objects.get(verb="scorecard.created")
    assert event.data == {"candidates": 3, "leader": "Jetson Orin gateway"}


def test_scorecard_refuses_a_missing_score_and_duplicate_names(world):
    stacks = candidates()
    del stacks[0]["scores"]["security"]
    stacks[2]["name"] = stacks[1]["name"].upper()
    with pytest.raises(InvalidInput) as caught:
        services.create_scorecard(
            organization=world.a.org, actor=_actor(world), name="x", candidates=stacks
        )
    assert caught.value.fields["candidates[0].scores.security"] == ["Score this category (1-5)."]
    assert "names must be unique" in caught.value.fields["candidates[2].name"][0]


def test_scorecard_needs_a_candidate(world):
    with pytest.raises(InvalidInput) as caught:
        services.create_scorecard(
            organization=world.a.org, actor=_actor(world), name="x", candidates=[]
        )
    assert "candidates" in caught.value.fields


def test_update_scorecard_refuses_a_stale_revision(world):
    scorecard = make_scorecard(world.a.org)
    services.update_scorecard(
        scorecard=scorecard, actor=_actor(world), name="First edit", expected_revision=1
    )
    with pytest.raises(Conflict) as caught:
        services.update_scorecard(
            scorecard=scorecard, actor=_actor(world), name="Second edit", expected_revision=1
        )
    assert caught.value.code == "stale_revision"
    scorecard.refresh_from_db()
    assert (scorecard.name, scorecard.revision) == ("First edit", 2)


def test_scenario_caches_its_headline_figures(world):
    scenario = make_scenario(world.a.org)
    summary = scenario.summary
    assert set(summary["placements"]) == {"on_device", "near_edge", "cloud", "hybrid"}
    best = summary["best_placement"]
    assert scenario.best_placement == best
    npvs = {p: v["npv"] for p, v in summary["placements"].items()}
    assert npvs[best] == max(npvs.values())
    for figures in summary["placements"].values():
        assert figures["npv_p10"] <= figures["npv_p50"] <= figures["npv_p90"]
    assert summary["draws"] == 10_000
    assert summary["top_driver"]["label"]


def test_scenario_bad_inputs_are_422_per_field_and_nothing_is_saved(world):
    inputs = logistics_inputs()
    inputs["estimates"]["power.electricity_price_per_kwh"]["low"] = -1
    inputs["estimates"]["tco.support_hourly_rate"].update(low=120, likely=75, high=50)
    with pytest.raises(InvalidInput) as caught:
        services.create_scenario(
            organization=world.a.org, actor=_actor(world), name="bad", inputs=inputs
        )
    fields = caught.value.fields
    assert fields["power.electricity_price_per_kwh"] == ["low (-1) cannot be negative."]
    assert "greater than likely" in fields["tco.support_hourly_rate"][0]
    assert RoiScenario.objects.count() == 0


def test_update_scenario_records_changed_inputs_and_refreshes_the_summary(world):
    scenario = make_scenario(world.a.org)
    before = scenario.summary["placements"]["cloud"]["npv"]
    inputs = logistics_inputs()
    inputs["estimates"]["tco.cloud_price_per_1000"].update(low=5, likely=8, high=12)
    updated = services.update_scenario(
        scenario=scenario, actor=_actor(world), inputs=inputs, expected_revision=1
    )
    assert updated.revision == 2
    assert updated.summary["placements"]["cloud"]["npv"] < before  # dearer cloud, lower NPV
    event = AuditEvent.objects.get(verb="scenario.updated")
    assert event.data["changed_inputs"] == ["tco.cloud_price_per_1000"]


def test_clone_scenario_keeps_the_inputs_and_remembers_its_origin(world):
    scenario = make_scenario(world.a.org, name="Base")
    clone = services.clone_scenario(scenario=scenario, actor=_actor(world))
    assert clone.pk != scenario.pk
    assert clone.name == "Base (copy)"
    assert clone.cloned_from == scenario
    assert clone.inputs == scenario.inputs
    assert AuditEvent.objects.filter(verb="scenario.cloned", target_id=str(clone.pk)).exists()


def test_create_plan_from_an_assessment_tailors_tasks_and_metrics(world):
    assessment = make_assessment(world.a.org)
    scenario = make_scenario(world.a.org)
    plan = services.create_plan(
        organization=world.a.org,
        actor=_actor(world),
        assessment=assessment,
        scenario=scenario,
        targets={"accuracy": 0.93},
    )
    ids = {task["id"] for task in plan.tasks}
    assert "provision_gateways" in ids  # near-edge
    assert "tune_confidence_thresholds" in ids  # logistics
    assert [phase["key"] for phase in plan.data["phases"]] == [
        "days_1_15",
        "days_16_45",
        "days_46_70",
        "days_71_90",
    ]
    metrics = {m["key"]: m for m in plan.data["metrics"]}
    assert metrics["latency_p95"]["target"] == 150.0  # the answered tolerance
    assert metrics["accuracy"]["target"] == 0.93
    assert plan.scenario == scenario
    assert plan.placement == "near_edge"


def test_create_plan_refuses_when_todays_rules_answer_differently(world):
    assessment = make_assessment(world.a.org)
    Assessment.objects.filter(pk=assessment.pk).update(ruleset_version="2025.9")
    assessment.refresh_from_db()
    with pytest.raises(Conflict) as caught:
        services.create_plan(organization=world.a.org, actor=_actor(world), assessment=assessment)
    assert caught.value.code == "ruleset_changed"
    assert Plan.objects.count() == 0


def test_create_plan_refuses_another_organisations_scenario(world):
    assessment = make_assessment(world.a.org)
    foreign = make_scenario(world.b.org)
    with pytest.raises(InvalidInput):
        services.create_plan(
            organization=world.a.org, actor=_actor(world), assessment=assessment, scenario=foreign
        )


def test_task_status_changes_once_and_is_audited_once(world):
    plan = make_plan(world.a.org)
    services.set_task_status(
        plan=plan, actor=_actor(world), task_id="select_runtime", status="done"
    )
    services.set_task_status(
        plan=plan, actor=_actor(world), task_id="select_runtime", status="done"
    )
    plan.refresh_from_db()
    task = next(t for t in plan.tasks if t["id"] == "select_runtime")
    assert task["status"] == TaskStatus.DONE
    events = AuditEvent.objects.filter(verb="plan.task_status_changed")
    assert events.count() == 1
    assert events.get().data == {"task": "select_runtime", "from": "todo", "to": "done"}


def test_task_status_refuses_unknown_status_and_task(world):
    plan = make_plan(world.a.org)
    with pytest.raises(InvalidInput) as caught:
        services.set_task_status(
            plan=plan, actor=_actor(world), task_id="select_runtime", status="x"
        )
    assert "status" in caught.value.fields
    with pytest.raises(InvalidInput) as caught:
        services.set_task_status(plan=plan, actor=_actor(world), task_id="nope", status="done")
    assert "task_id" in caught.value.fields


def test_task_owner_must_be_a_member(world):
    plan = make_plan(world.a.org)
    member = world.a.user(Role.APPROVER)
    services.assign_task(plan=plan, actor=_actor(world), task_id="device_identity", assignee=member)
    plan.refresh_from_db()
    assert plan.assignees == {"device_identity": member.pk}
    with pytest.raises(InvalidInput):
        services.assign_task(
            plan=plan,
            actor=_actor(world),
            task_id="device_identity",
            assignee=world.b.user(Role.ADMIN),
        )
    services.assign_task(plan=plan, actor=_actor(world), task_id="device_identity", assignee=None)
    plan.refresh_from_db()
    assert plan.assignees == {}


def test_update_plan_targets_changes_metrics_in_place(world):
    plan = make_plan(world.a.org)
    services.set_task_status(
        plan=plan, actor=_actor(world), task_id="select_runtime", status="doing"
    )
    plan = services.update_plan(
        plan=plan, actor=_actor(world), targets={"latency_p95_ms": 120, "ece": 0.03}
    )
    metrics = {m["key"]: m["target"] for m in plan.data["metrics"]}
    assert metrics["latency_p95"] == 120
    assert metrics["calibration_ece"] == 0.03
    assert metrics["accuracy"] == 0.9  # untouched
    assert next(t for t in plan.tasks if t["id"] == "select_runtime")["status"] == "doing"
    assert plan.targets["ece"] == 0.03


@pytest.mark.parametrize(
    ("targets", "field"),
    [({"accuracy": 1.5}, "accuracy"), ({"accuracy": None}, "accuracy"), ({"speed": 1}, "speed")],
)
def test_update_plan_refuses_bad_targets(world, targets, field):
    plan = make_plan(world.a.org)
    with pytest.raises(InvalidInput) as caught:
        services.update_plan(plan=plan, actor=_actor(world), targets=targets)
    assert field in caught.value.fields
    plan.refresh_from_db()
    assert plan.targets["accuracy"] == 0.9


def test_deleting_an_organisation_takes_its_planning_work_with_it(world):
    from opshero.models import Organization

    plan = make_plan(world.a.org, scenario=make_scenario(world.a.org))
    make_scorecard(world.a.org, assessment=plan.assessment)
    theirs = make_plan(world.b.org)
    Organization.objects.filter(pk=world.a.org.pk).delete()
    assert list(Plan.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert list(Assessment.objects.values_list("pk", flat=True)) == [theirs.assessment_id]
    assert RoiScenario.objects.count() == 0
