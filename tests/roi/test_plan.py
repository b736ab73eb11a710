"""90-day plan generation, success metrics, and live measurements behind one registry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from roi.engine import Estimate, evaluate, preset, recompute_with_measurements
from roi.plan import (
    DECIDING_PROVENANCE,
    PHASES,
    Direction,
    MeasureKey,
    Measurement,
    MeasureRegistry,
    MetricTargets,
    NinetyDayPlan,
    OwnerRole,
    Provenance,
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


def measurement(key: str, value: float, unit: str, source: str = "fleet telemetry"):
    """A field measurement: three devices at one site over the week before ``WHEN``."""
    return Measurement(
        key=key,
        value=value,
        unit=unit,
        source=source,
        measured_at=WHEN,
        provenance=Provenance.FIELD,
        sites=("Dock 1",),
        device_count=3,
        window_start=WHEN - timedelta(days=7),
        window_end=WHEN,
    )


def lab(key: str, value: float, unit: str, source: str = "validation run 12", bucket: str = ""):
    return Measurement(
        key=key,
        value=value,
        unit=unit,
        source=source,
        measured_at=WHEN,
        provenance=Provenance.LAB,
        target="x86/ARM CPU (onnxruntime)",
        bucket=bucket,
    )


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
        metrics=[metric(direction)], measurements={"k": [measurement("k", value, "ms")]}
    )
    assert status.state is state
    assert status.measurement is not None and status.measurement.value == value
    assert "fleet telemetry, 2026-03-01; field: 3 devices at Dock 1" in status.reason


@pytest.mark.parametrize(
    ("measured", "reason"),
    [
        (None, "Not measured yet"),
        (measurement("k", 0.08, "s"), "not comparable"),
        (measurement("k", float("nan"), "ms"), "not a number"),
    ],
)
def test_missing_or_unusable_measurements_are_not_measured(measured, reason):
    found = [measured] if measured is not None else []
    (status,) = evaluate_metrics(metrics=[metric(Direction.AT_MOST)], measurements={"k": found})
    assert status.state is Tracking.NOT_MEASURED
    assert reason in status.reason


def test_lab_figures_decide_only_lab_metrics_and_are_shown_beside_field_ones():
    plan = plan_for(latency_tolerance_ms=150)
    sources = MeasureRegistry()

    @sources.register(MeasureKey.LATENCY_P95_MS, provenance=Provenance.LAB)
    def p95_from_validation(context):
        return lab(MeasureKey.LATENCY_P95_MS, context["p95"], "ms", bucket="32x64")

    @sources.register(MeasureKey.INT8_ACCURACY_DROP, provenance=Provenance.LAB)
    def int8_from_validation(context):
        return lab(MeasureKey.INT8_ACCURACY_DROP, 1.4, "points")

    @sources.register(MeasureKey.ECE, provenance=Provenance.LAB)
    def nothing_yet(context):
        return None

    found = sources.collect(keys=plan.measure_keys, context={"p95": 142.0})
    statuses = {s.metric.key: s for s in evaluate_metrics(metrics=plan.metrics, measurements=found)}
    p95 = statuses["latency_p95"]
    # 142 ms in the lab is under the 150 ms target, but time-to-action is decided in the field.
    assert p95.state is Tracking.NOT_MEASURED
    assert p95.measurement is None
    assert p95.reference is not None and p95.reference.value == 142.0
    assert p95.reason == (
        "Not measured yet: no field source has reported latency.p95_ms. The lab figure, 142 ms "
        "(lab: x86/ARM CPU (onnxruntime), bucket 32x64), is shown for reference and does not "
        "decide it."
    )
    assert statuses["int8_accuracy_drop"].state is Tracking.OFF_TRACK  # a lab metric
    assert statuses["int8_accuracy_drop"].reference is None
    assert statuses["calibration_ece"].state is Tracking.NOT_MEASURED
    assert statuses["rollout_time"].state is Tracking.NOT_MEASURED


def test_a_field_measurement_decides_a_field_metric_whatever_the_lab_says():
    plan = plan_for(latency_tolerance_ms=150)
    found = {
        MeasureKey.LATENCY_P95_MS: [
            lab(MeasureKey.LATENCY_P95_MS, 0.008, "ms"),
            measurement(MeasureKey.LATENCY_P95_MS, 210.0, "ms"),
        ]
    }
    statuses = {s.metric.key: s for s in evaluate_metrics(metrics=plan.metrics, measurements=found)}
    p95 = statuses["latency_p95"]
    assert p95.state is Tracking.OFF_TRACK
    assert p95.measurement.provenance is Provenance.FIELD and p95.measurement.value == 210.0
    assert p95.reference.provenance is Provenance.LAB and p95.reference.value == 0.008
    assert p95.reason.startswith("210 ms misses the target <= 150 ms (fleet telemetry")


def test_a_field_figure_never_decides_a_lab_metric():
    plan = plan_for(latency_tolerance_ms=150)
    found = {MeasureKey.OPERATOR_COVERAGE: [measurement(MeasureKey.OPERATOR_COVERAGE, 1, "share")]}
    statuses = {s.metric.key: s for s in evaluate_metrics(metrics=plan.metrics, measurements=found)}
    coverage = statuses["operator_coverage"]
    assert coverage.state is Tracking.NOT_MEASURED
    assert coverage.reference is not None and coverage.reference.provenance is Provenance.FIELD


def test_every_metric_says_which_provenance_decides_it():
    plan = plan_for(latency_tolerance_ms=150)
    decided = {metric.key: metric.decided_by for metric in plan.metrics}
    assert decided == {
        "latency_p95": Provenance.FIELD,
        "offline_coverage": Provenance.FIELD,
        "accuracy": Provenance.FIELD,
        "int8_accuracy_drop": Provenance.LAB,
        "operator_coverage": Provenance.LAB,
        "calibration_ece": Provenance.FIELD,
        "rollout_time": Provenance.FIELD,
        "rollback_time": Provenance.FIELD,
        "time_to_diagnose": Provenance.FIELD,
    }
    # Every measure key has a rule; a key without one is decided in the field.
    assert set(DECIDING_PROVENANCE) == set(MeasureKey)
    assert metric(Direction.AT_MOST).decided_by is Provenance.FIELD
    # Plans stored before provenance existed get the key's rule.
    stored = plan.to_dict()
    for item in stored["metrics"]:
        del item["decided_by"]
    assert NinetyDayPlan.from_dict(stored) == plan


def test_measurements_say_where_they_came_from():
    with pytest.raises(ValueError, match="must name its target profile"):
        Measurement("k", 1, "ms", "run", WHEN, Provenance.LAB)
    with pytest.raises(ValueError, match="must give its window"):
        Measurement("k", 1, "ms", "telemetry", WHEN, Provenance.FIELD)
    with pytest.raises(ValueError, match="ends before it starts"):
        Measurement(
            "k",
            1,
            "ms",
            "t",
            WHEN,
            Provenance.FIELD,
            window_start=WHEN,
            window_end=WHEN.replace(day=1, month=1),
        )
    assert lab("k", 1, "ms", bucket="8x64").where == "lab: x86/ARM CPU (onnxruntime), bucket 8x64"
    assert measurement("k", 1, "ms").where == "field: 3 devices at Dock 1 2026-02-22 to 2026-03-01"
    for original in (lab("k", 1, "ms", bucket="8x64"), measurement("k", 1, "ms")):
        assert Measurement.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_registry_holds_one_source_per_key_and_provenance_unless_overwriting():
    sources = MeasureRegistry()
    field = Provenance.FIELD
    sources.register("k", provenance=field)(lambda context: None)
    with pytest.raises(ValueError, match="already registered"):
        sources.register("k", provenance=field)(lambda context: None)
    sources.register("k", provenance=field, overwrite=True)(lambda c: measurement("k", 1, "ms"))
    sources.register("k", provenance=Provenance.LAB)(lambda context: lab("k", 2, "ms"))
    found = sources.collect(keys=["k", "unknown"], context={})
    assert [(m.provenance, m.value) for m in found["k"]] == [(Provenance.LAB, 2), (field, 1)]
    assert sources.collect(keys=["unknown"], context={}) == {"unknown": ()}
    assert sources.slots() == (("k", field), ("k", Provenance.LAB))


def test_registry_refuses_a_source_that_answers_for_another_key_or_provenance():
    sources = MeasureRegistry()
    sources.register("a", provenance=Provenance.FIELD)(lambda context: measurement("b", 1, "ms"))
    with pytest.raises(ValueError, match="returned a field measurement of 'b'"):
        sources.collect(keys=["a"], context={})
    sources.register("c", provenance=Provenance.FIELD)(lambda context: lab("c", 1, "ms"))
    with pytest.raises(ValueError, match="returned a lab measurement of 'c'"):
        sources.collect(keys=["c"], context={})


def test_default_registry_functions_plug_in_a_source():
    key = "tests.roi.default_registry_probe"
    try:

        @register_source(key, provenance=Provenance.FIELD)
        def probe(context):
            return measurement(key, context["value"], "h")

        assert key in set(registry.keys())
        assert collect(keys=[key], context={"value": 3.5})[key][0].value == 3.5
    finally:
        registry.unregister(key, provenance=Provenance.FIELD)
    assert collect(keys=[key], context={}) == {key: ()}


def test_measured_offline_coverage_and_staff_hours_feed_the_roi_recompute():
    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    measured = roi_measured_values(
        placement=Placement.NEAR_EDGE,
        measurements={
            MeasureKey.STAFF_HOURS_PER_ROLLBACK: [
                measurement(MeasureKey.STAFF_HOURS_PER_ROLLBACK, 1.5, "h")
            ],
            MeasureKey.OFFLINE_COVERAGE: [measurement(MeasureKey.OFFLINE_COVERAGE, 0.6, "share")],
            MeasureKey.STAFF_HOURS_PER_ROLLOUT: [
                measurement(MeasureKey.STAFF_HOURS_PER_ROLLOUT, 2, "min")  # wrong unit: skipped
            ],
        },
    )
    assert measured == {
        "maintenance.rollback_hours.near_edge": 1.5,
        "offline.completes_offline.near_edge": 0.6,
    }
    both = recompute_with_measurements(inputs=inputs, measured=measured)
    planned, actual = both.planned[Placement.NEAR_EDGE], both.measured[Placement.NEAR_EDGE]
    # Offline coverage fell from 0.95 to 0.6: what stops in an outage is lost, so the outage
    # loss grows from 5 % to 40 % of the outage value.
    assert actual.outage_loss_monthly == pytest.approx(planned.outage_loss_monthly * 0.4 / 0.05)
    point = inputs.with_estimates({"offline.completes_offline.near_edge": Estimate.exactly(0.6)})
    assert evaluate(inputs=point)[Placement.NEAR_EDGE].outage_loss_monthly == pytest.approx(
        actual.outage_loss_monthly
    )


def test_rollout_and_rollback_durations_leave_the_staff_hours_alone():
    """A 20 h rollout that meets its 24 h target used to become 20 staff hours per rollout and
    cut the logistics near-edge NPV; durations now feed only their plan metrics."""
    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    measured = roi_measured_values(
        placement=Placement.NEAR_EDGE,
        measurements={
            MeasureKey.ROLLOUT_HOURS: [measurement(MeasureKey.ROLLOUT_HOURS, 20, "h")],
            MeasureKey.ROLLBACK_MINUTES: [measurement(MeasureKey.ROLLBACK_MINUTES, 15, "min")],
        },
    )
    assert measured == {}
    both = recompute_with_measurements(inputs=inputs, measured=measured)
    assert both.measured[Placement.NEAR_EDGE].npv == both.planned[Placement.NEAR_EDGE].npv


def test_only_field_measurements_replace_roi_assumptions():
    measured = roi_measured_values(
        placement=Placement.NEAR_EDGE,
        measurements={MeasureKey.OFFLINE_COVERAGE: [lab(MeasureKey.OFFLINE_COVERAGE, 1, "share")]},
    )
    assert measured == {}


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
    assert all(metric.decided_by for metric in NinetyDayPlan.from_dict(stored).metrics)
