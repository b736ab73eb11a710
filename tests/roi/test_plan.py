"""90-day plan generation, success metrics, and live measurements behind one registry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from roi.engine import Estimate, evaluate, preset, recompute_with_measurements
from roi.plan import (
    PHASES,
    Direction,
    MeasureKey,
    Measurement,
    MeasureRegistry,
    MetricTargets,
    NinetyDayPlan,
    OwnerRole,
    SuccessMetric,
    TaskStatus,
    Tracking,
    collect,
    evaluate_metrics,
    generate_plan,
    register_source,
    registry,
    roi_measured_values,
)
from roi.rules import (
    ExistingHardware,
    ModelComplexity,
    Placement,
    PlanningInputError,
    PrivacyRisk,
    WizardAnswers,
    Workflow,
    decide,
)

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def answers(**changes) -> WizardAnswers:
    base = WizardAnswers(
        workflow=Workflow.CUSTOM,
        latency_tolerance_ms=1000,
        offline_share=0.0,
        privacy_risk=PrivacyRisk.LOW,
        model_changes_per_year=4,
        sites=5,
    )
    return replace(base, **changes)


def plan_for(**changes) -> NinetyDayPlan:
    return generate_plan(result=decide(answers=answers(**changes)))


def task_ids(plan: NinetyDayPlan) -> set[str]:
    return {task.id for task in plan.tasks}


def measurement(key: str, value: float, unit: str, source: str = "validation run 12"):
    return Measurement(key=key, value=value, unit=unit, source=source, measured_at=WHEN)


def test_plan_has_the_seed_phases_with_the_seed_steps():
    plan = plan_for(latency_tolerance_ms=150, devices_per_site=3)
    assert [(p.first_day, p.last_day) for p in PHASES] == [(1, 15), (16, 45), (46, 70), (71, 90)]
    first = plan.tasks_in("days_1_15")
    assert [task.id for task in first[:3]] == [
        "pick_workflow",
        "decide_placement",
        "define_success_metrics",
    ]
    # The assessment already picked the workflow and decided the placement.
    assert [task.status for task in first[:3]] == [
        TaskStatus.DONE,
        TaskStatus.DONE,
        TaskStatus.DOING,
    ]
    assert {"start_with_pilot_sites", "staged_releases", "operator_feedback_loop"} <= {
        task.id for task in plan.tasks_in("days_71_90")
    }
    assert len(task_ids(plan)) == len(plan.tasks)  # stable, unique ids
    assert all(task.owner in set(OwnerRole) for task in plan.tasks)


def test_near_edge_plan_provisions_gateways_and_tests_their_failure():
    plan = plan_for(
        latency_tolerance_ms=150, devices_per_site=4, model_complexity=ModelComplexity.MEDIUM
    )
    assert plan.placement is Placement.NEAR_EDGE
    gateways = next(task for task in plan.tasks if task.id == "provision_gateways")
    assert gateways.owner is OwnerRole.ADMIN
    assert gateways.phase == "days_16_45"
    assert "4 device(s)" in gateways.detail
    assert "gateway_failure_test" in task_ids(plan)
    assert "package_model_for_devices" not in task_ids(plan)


def test_on_device_plan_packages_the_model_for_the_devices():
    plan = plan_for(latency_tolerance_ms=150, model_complexity=ModelComplexity.SMALL)
    assert plan.placement is Placement.ON_DEVICE
    assert {"package_model_for_devices", "full_shift_device_test"} <= task_ids(plan)
    assert "provision_gateways" not in task_ids(plan)


def test_optional_helper_tiers_get_optional_tasks():
    plan = plan_for(latency_tolerance_ms=150, model_complexity=ModelComplexity.MEDIUM)
    gateways = next(task for task in plan.tasks if task.id == "provision_gateways")
    assert gateways.title.startswith("Optional: ")


def test_cloud_plan_has_no_edge_tasks_or_edge_metrics():
    plan = plan_for()
    assert plan.placement is Placement.CLOUD
    ids = task_ids(plan)
    assert {"confirm_cloud_governance", "cloud_latency_from_site"} <= ids
    assert not ids & {"provision_gateways", "package_model_for_devices", "validate_power_thermal"}
    keys = {metric.key for metric in plan.metrics}
    assert not keys & {"offline_coverage", "int8_accuracy_drop", "operator_coverage"}


def test_phi_adds_data_minimisation_labelling_and_audit_tasks():
    plan = plan_for(
        workflow=Workflow.HEALTHCARE_DECISION_SUPPORT,
        privacy_risk=PrivacyRisk.HIGH,
        phi_involved=True,
        existing_hardware=(ExistingHardware.WINDOWS_NPU_FLEET,),
    )
    ids = task_ids(plan)
    assert {
        "design_data_minimisation",
        "label_ai_assistance",
        "encrypt_and_retain",
        "audit_and_access",
        "compliant_retraining",
    } <= ids
    assert "confirm_cloud_governance" not in ids
    assert "score_stacks_before_buying" not in ids  # they already have NPU hardware


def test_metrics_take_targets_from_the_answers_and_from_overrides():
    plan = plan_for(latency_tolerance_ms=150)
    metrics = {metric.key: metric for metric in plan.metrics}
    assert metrics["latency_p95"].target == 150
    assert metrics["latency_p95"].direction is Direction.AT_MOST
    assert metrics["latency_p95"].measure_key == MeasureKey.LATENCY_P95_MS
    assert metrics["offline_coverage"].target == 0.95  # local primary
    assert metrics["int8_accuracy_drop"].target == 1.0
    assert metrics["rollback_time"].unit == "min"
    custom = generate_plan(
        result=decide(answers=answers(latency_tolerance_ms=150)),
        targets=MetricTargets(latency_p95_ms=120, int8_accuracy_drop_points=0.5),
    )
    custom_metrics = {metric.key: metric.target for metric in custom.metrics}
    assert custom_metrics["latency_p95"] == 120
    assert custom_metrics["int8_accuracy_drop"] == 0.5
    assert {
        "latency_p95",
        "offline_coverage",
        "accuracy",
        "int8_accuracy_drop",
        "calibration_ece",
        "rollout_time",
        "rollback_time",
        "time_to_diagnose",
    } <= set(custom_metrics)


def test_bad_targets_name_the_field():
    with pytest.raises(PlanningInputError) as caught:
        generate_plan(result=decide(answers=answers()), targets=MetricTargets(ece=2, accuracy=-1))
    assert set(caught.value.fields) == {"ece", "accuracy"}


def metric(direction: Direction, target: float = 100, unit: str = "ms") -> SuccessMetric:
    return SuccessMetric("m", "Metric", target, unit, direction, "k", "why")


@pytest.mark.parametrize(
    ("direction", "value", "state"),
    [
        (Direction.AT_MOST, 99, Tracking.ON_TRACK),
        (Direction.AT_MOST, 100, Tracking.ON_TRACK),  # boundary inclusive
        (Direction.AT_MOST, 101, Tracking.OFF_TRACK),
        (Direction.AT_LEAST, 100, Tracking.ON_TRACK),
        (Direction.AT_LEAST, 99, Tracking.OFF_TRACK),
    ],
)
def test_evaluate_metrics_compares_in_the_metric_direction(direction, value, state):
    (status,) = evaluate_metrics(
        metrics=[metric(direction)], measurements={"k": measurement("k", value, "ms")}
    )
    assert status.state is state
    assert status.measurement is not None and status.measurement.value == value
    assert "validation run 12, 2026-03-01" in status.reason


@pytest.mark.parametrize(
    ("measured", "reason"),
    [
        (None, "Not measured yet"),
        (measurement("k", 0.08, "s"), "not comparable"),
        (measurement("k", float("nan"), "ms"), "not a number"),
    ],
)
def test_missing_or_unusable_measurements_are_not_measured(measured, reason):
    (status,) = evaluate_metrics(metrics=[metric(Direction.AT_MOST)], measurements={"k": measured})
    assert status.state is Tracking.NOT_MEASURED
    assert reason in status.reason


def test_planned_vs_measured_picks_up_validation_figures_and_the_rest_is_not_measured():
    plan = plan_for(latency_tolerance_ms=150)
    sources = MeasureRegistry()

    @sources.register(MeasureKey.LATENCY_P95_MS)
    def p95_from_validation(context):
        return measurement(MeasureKey.LATENCY_P95_MS, context["p95"], "ms")

    @sources.register(MeasureKey.INT8_ACCURACY_DROP)
    def int8_from_validation(context):
        return measurement(MeasureKey.INT8_ACCURACY_DROP, 1.4, "points")

    @sources.register(MeasureKey.ECE)
    def nothing_yet(context):
        return None

    found = sources.collect(keys=plan.measure_keys, context={"p95": 142.0})
    statuses = {s.metric.key: s for s in evaluate_metrics(metrics=plan.metrics, measurements=found)}
    assert statuses["latency_p95"].state is Tracking.ON_TRACK
    assert statuses["int8_accuracy_drop"].state is Tracking.OFF_TRACK
    assert statuses["calibration_ece"].state is Tracking.NOT_MEASURED
    assert statuses["rollout_time"].state is Tracking.NOT_MEASURED
    assert statuses["latency_p95"].reason == (
        "142 ms meets the target <= 150 ms (validation run 12, 2026-03-01)."
    )


def test_registry_refuses_a_second_source_for_a_key_unless_overwriting():
    sources = MeasureRegistry()
    sources.register("k")(lambda context: None)
    with pytest.raises(ValueError, match="already registered"):
        sources.register("k")(lambda context: None)
    sources.register("k", overwrite=True)(lambda context: measurement("k", 1, "ms"))
    assert sources.collect(keys=["k", "unknown"], context={})["k"].value == 1
    assert sources.collect(keys=["unknown"], context={}) == {"unknown": None}


def test_registry_refuses_a_source_that_answers_for_another_key():
    sources = MeasureRegistry()
    sources.register("a")(lambda context: measurement("b", 1, "ms"))
    with pytest.raises(ValueError, match="returned a measurement of 'b'"):
        sources.collect(keys=["a"], context={})


def test_default_registry_functions_plug_in_a_source():
    key = "tests.roi.default_registry_probe"
    try:

        @register_source(key)
        def probe(context):
            return measurement(key, context["value"], "h")

        assert key in set(registry.keys())
        assert collect(keys=[key], context={"value": 3.5})[key].value == 3.5
    finally:
        registry.unregister(key)
    assert collect(keys=[key], context={}) == {key: None}


def test_measured_support_kpis_feed_the_roi_recompute():
    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    measured = roi_measured_values(
        placement=Placement.NEAR_EDGE,
        measurements={
            MeasureKey.ROLLBACK_MINUTES: measurement(MeasureKey.ROLLBACK_MINUTES, 90, "min"),
            MeasureKey.OFFLINE_COVERAGE: measurement(MeasureKey.OFFLINE_COVERAGE, 0.6, "share"),
            MeasureKey.ROLLOUT_HOURS: measurement(MeasureKey.ROLLOUT_HOURS, 2, "min"),  # wrong
        },
    )
    assert measured == {
        "maintenance.rollback_hours.near_edge": 1.5,  # 90 minutes
        "offline.completes_offline.near_edge": 0.6,
    }
    both = recompute_with_measurements(inputs=inputs, measured=measured)
    planned, actual = both.planned[Placement.NEAR_EDGE], both.measured[Placement.NEAR_EDGE]
    # Offline coverage fell from 0.95 to 0.6: the offline benefit falls by the same ratio.
    assert actual.benefits["offline"] == pytest.approx(planned.benefits["offline"] * 0.6 / 0.95)
    point = inputs.with_estimates({"offline.completes_offline.near_edge": Estimate.exactly(0.6)})
    assert evaluate(inputs=point)[Placement.NEAR_EDGE].benefits["offline"] == pytest.approx(
        actual.benefits["offline"]
    )


def test_plan_round_trips_and_task_status_changes():
    plan = plan_for(latency_tolerance_ms=150)
    stored = json.loads(json.dumps(plan.to_dict()))
    assert NinetyDayPlan.from_dict(stored) == plan
    moved = plan.with_status(task_id="select_runtime", status=TaskStatus.BLOCKED)
    assert next(t for t in moved.tasks if t.id == "select_runtime").status is TaskStatus.BLOCKED
    assert next(t for t in plan.tasks if t.id == "select_runtime").status is TaskStatus.TODO
    with pytest.raises(PlanningInputError) as caught:
        plan.with_status(task_id="nope", status=TaskStatus.DONE)
    assert "task_id" in caught.value.fields
    assert Measurement.from_dict(measurement("k", 1, "ms").to_dict()) == measurement("k", 1, "ms")
