"""Measurement sources plug into the plan and the ROI recompute without touching either."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.measurements import load_sources, measurement_context, planned_vs_measured
from roi.plan import MeasureKey, Measurement, Provenance, Tracking, register_source, registry
from tests.roi.builders import make_plan, make_scenario

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def sources():
    """Register sources for one test and remove them afterwards."""
    saved: dict[tuple[str, Provenance], object] = {}
    load_sources()  # the real sources register first, so the ones replaced here come back

    def add(key: str, source, provenance: Provenance = Provenance.FIELD):
        if (key, provenance) not in saved:
            saved[key, provenance] = registry.source(key, provenance=provenance)
        register_source(key, provenance=provenance, overwrite=True)(source)

    yield add
    for (key, provenance), previous in saved.items():
        registry.unregister(key, provenance=provenance)
        if previous is not None:
            register_source(key, provenance=provenance)(previous)


def test_context_carries_what_a_source_needs(world):
    plan = make_plan(world.a.org)
    context = measurement_context(plan)
    assert context["organisation"] == world.a.org
    assert context["plan"] == plan
    assert context["latency_budget_ms"] == 150.0
    assert str(context["placement"]) == "near_edge"
    assert [str(t) for t in context["inference_tiers"]] == ["near_edge"]
    assert context["since"] == plan.created_at


VALIDATION_KEYS = {
    (MeasureKey.LATENCY_P95_MS, Provenance.LAB),
    (MeasureKey.ACCURACY, Provenance.LAB),
    (MeasureKey.INT8_ACCURACY_DROP, Provenance.LAB),
    (MeasureKey.OPERATOR_COVERAGE, Provenance.LAB),
    (MeasureKey.ECE, Provenance.LAB),
}
TELEMETRY_KEYS = {
    (MeasureKey.LATENCY_P95_MS, Provenance.FIELD),
    (MeasureKey.OFFLINE_COVERAGE, Provenance.FIELD),
    (MeasureKey.ACCURACY, Provenance.FIELD),
    (MeasureKey.TIME_TO_DIAGNOSE_HOURS, Provenance.FIELD),
    (MeasureKey.FIELD_INFERENCE_P95_MS, Provenance.FIELD),
    (MeasureKey.FIELD_THROTTLED_SHARE, Provenance.FIELD),
}
ROLLOUT_KEYS = {
    (MeasureKey.ROLLOUT_HOURS, Provenance.FIELD),
    (MeasureKey.ROLLBACK_MINUTES, Provenance.FIELD),
}
# roi.sources.review: calibration from reviewed cases (its accuracy source shares telemetry's
# slot, keeping whichever of labelled inferences and reviewed cases has more cases).
REVIEW_KEYS = {(MeasureKey.ECE, Provenance.FIELD)}


def field_measurement(key, value, unit, source="fleet telemetry"):
    return Measurement(
        key,
        value,
        unit,
        source,
        WHEN,
        Provenance.FIELD,
        sites=("Dock 1",),
        device_count=3,
        window_start=WHEN - timedelta(days=7),
        window_end=WHEN,
    )


def test_without_measurements_everything_is_not_measured(world):
    measured = planned_vs_measured(make_plan(world.a.org, scenario=make_scenario(world.a.org)))
    assert {status.state for status in measured.statuses} == {Tracking.NOT_MEASURED}
    # The validation (lab), telemetry, rollout and review (field) sources are connected.
    # Without telemetry, finished rollouts or reviews the field sources report nothing.
    assert set(measured.connected) == VALIDATION_KEYS | TELEMETRY_KEYS | ROLLOUT_KEYS | REVIEW_KEYS
    assert measured.field_measurements == ()
    assert measured.roi.replaced == ()
    assert measured.roi.planned.to_dict() == measured.roi.measured.to_dict()


def test_a_new_source_shows_on_the_plan_and_in_the_roi_recompute(client, world, sources):
    plan = make_plan(world.a.org, scenario=make_scenario(world.a.org))
    seen = []

    def p95(context):
        seen.append(context["organisation"])
        budget = context["latency_budget_ms"]
        return field_measurement(MeasureKey.LATENCY_P95_MS, budget * 1.2, "ms", "gateway telemetry")

    def offline(context):
        return field_measurement(MeasureKey.OFFLINE_COVERAGE, 0.5, "share")

    sources(MeasureKey.LATENCY_P95_MS, p95)
    sources(MeasureKey.OFFLINE_COVERAGE, offline)
    measured = planned_vs_measured(plan)
    states = {status.metric.key: status.state for status in measured.statuses}
    assert states["latency_p95"] is Tracking.OFF_TRACK  # 180 ms against <= 150 ms
    assert states["offline_coverage"] is Tracking.OFF_TRACK  # 50 % against >= 95 %
    assert states["accuracy"] is Tracking.NOT_MEASURED
    assert seen == [world.a.org]
    # Offline coverage replaces the near-edge assumption (likely 0.95) in the ROI case.
    assert [item.name for item in measured.roi.replaced] == ["offline.completes_offline.near_edge"]
    planned = measured.roi.planned.placements
    after = measured.roi.measured.placements
    near_edge = next(p for p in planned if str(p) == "near_edge")
    assert after[near_edge].npv < planned[near_edge].npv

    client.force_login(world.a.user(Role.VIEWER))
    body = client.get(reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk})).content
    page = body.decode()
    assert 'data-testid="metric-state-latency_p95">Off track<' in page
    assert "gateway telemetry" in page
    assert "field: 3 devices at Dock 1 2026-02-22 to 2026-03-01" in page
    assert "Connected measurement sources: <code>latency.p95_ms</code> (lab), " in page
    assert "<code>latency.p95_ms</code> (field)" in page
    label = "Share of the workflow that keeps working in a WAN outage (near-edge)"
    assert f"{label} (planned 0.95, measured 0.5)" in page


def test_a_measurement_in_the_wrong_unit_is_not_compared(world, sources):
    plan = make_plan(world.a.org)
    sources(
        MeasureKey.ECE,
        lambda context: field_measurement(MeasureKey.ECE, 3.0, "%", "review"),
    )
    status = next(
        s for s in planned_vs_measured(plan).statuses if s.metric.key == "calibration_ece"
    )
    assert status.state is Tracking.NOT_MEASURED
    assert "not comparable" in status.reason


def test_measured_stack_evidence_is_offered_next_to_the_score(client, world):
    from roi.measurements import register_evidence_source, unregister_evidence_source
    from roi.scorecard import StackEvidence
    from tests.roi.builders import make_scorecard

    scorecard = make_scorecard(world.a.org)

    def validation(organisation, candidate):
        if organisation != world.a.org or candidate["name"] != "Jetson Orin gateway":
            return None
        return StackEvidence(
            operator_coverage=0.97, int8_accuracy_drop_points=0.4, source="validation run #3"
        )

    register_evidence_source(validation)
    try:
        client.force_login(world.a.user(Role.PLANNER))
        page = client.get(
            reverse("roi:scorecard", kwargs={"org": "acme", "scorecard_id": scorecard.pk})
        ).content.decode()
    finally:
        unregister_evidence_source(validation)
    compat = re.search(r'data-testid="suggestion-0-model_compatibility">(.*?)</div>', page, re.S)
    assert compat and "Measured (lab): 3/5" in compat.group(1)
    assert "(lab: validation run #3)" in compat.group(1)
    assert 'data-testid="suggestion-0-quantization"' in page  # 0.4 points -> 5/5
    assert 'data-testid="suggestion-1-' not in page  # no evidence for the handheld


def _run_with_report(org, *, p95, supported, accuracy, drop, ece, synthetic=False):
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from fleet.models import HardwareTarget
    from modelregistry import services as model_services
    from modelregistry.models import ValidationRun
    from opshero.actors import Actor
    from tests import onnx_models

    actor = Actor.system("tests")
    model = model_services.create_model(organization=org, actor=actor, name=f"m-{org.slug}")
    version = model_services.upload_version(
        model=model,
        actor=actor,
        artifact=ContentFile(onnx_models.digits_mlp().model_path.read_bytes(), name="d.onnx"),
        version="1",
    )
    calibration = (
        {"name": "calibration", "status": "skipped", "data": {}}
        if synthetic
        else {"name": "calibration", "status": "passed", "data": {"accuracy": accuracy, "ece": ece}}
    )
    steps = [
        {"name": "compatibility", "status": "passed", "data": {"supported_share": supported}},
        {"name": "latency", "status": "passed", "data": {"buckets": [{"p95_ms": p95}]}},
        {
            "name": "quantization_int8",
            "status": "passed",
            "data": {"fidelity": {"accuracy_drop_points": None if synthetic else drop}},
        },
        calibration,
    ]
    run = ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.get(builtin_key="cpu"),
        number=1,
        status="passed",
        report={"passed": True, "steps": steps},
        report_digest="c" * 64,
        finished_at=timezone.now(),
    )
    return run


def test_validation_figures_are_the_measurements_of_their_own_organisation(world):
    plan = make_plan(world.a.org, scenario=make_scenario(world.a.org))
    _run_with_report(world.b.org, p95=1.0, supported=1.0, accuracy=0.99, drop=0.1, ece=0.01)
    measured = planned_vs_measured(plan)
    assert {s.state for s in measured.statuses} == {Tracking.NOT_MEASURED}  # not another org's
    run = _run_with_report(
        world.a.org, p95=480.0, supported=0.97, accuracy=0.9777, drop=0.4, ece=0.012
    )
    # Not measured until the plan names the model it is about...
    assert {s.state for s in planned_vs_measured(plan).statuses} == {Tracking.NOT_MEASURED}
    plan.model = run.version.model
    plan.save()
    measured = planned_vs_measured(plan)
    values = {k: m.value for k, found in measured.measurements.items() for m in found}
    assert {m.provenance for found in measured.measurements.values() for m in found} == {
        Provenance.LAB
    }
    assert values == {
        MeasureKey.LATENCY_P95_MS: 480.0,
        MeasureKey.OPERATOR_COVERAGE: 0.97,
        MeasureKey.ACCURACY: 0.9777,
        MeasureKey.INT8_ACCURACY_DROP: 0.4,
        MeasureKey.ECE: 0.012,
    }
    p95 = measured.measurement(MeasureKey.LATENCY_P95_MS, Provenance.LAB)
    assert p95.source == f"validation run #1 of {run.version.model.name} 1 on {run.target.name}"
    assert "validation worker" in p95.detail
    assert p95.target == run.target.name
    statuses = {s.metric.key: s for s in measured.statuses}
    # 480 ms on the validation worker's CPU: a lab reference, not the edge's time-to-action.
    assert statuses["latency_p95"].state is Tracking.NOT_MEASURED
    assert statuses["latency_p95"].reference == p95
    assert "does not decide it" in statuses["latency_p95"].reason
    assert statuses["calibration_ece"].state is Tracking.NOT_MEASURED  # field: real inputs
    assert statuses["operator_coverage"].state is Tracking.OFF_TRACK  # lab: 97 % < 98 %
    assert statuses["int8_accuracy_drop"].state is Tracking.ON_TRACK  # lab: 0.4 <= 1 point
    assert statuses["rollout_time"].state is Tracking.NOT_MEASURED  # no rollout source yet


def test_synthetic_runs_measure_latency_but_not_accuracy(world):
    plan = make_plan(world.a.org, scenario=make_scenario(world.a.org))
    run = _run_with_report(
        world.a.org, p95=12.0, supported=1.0, accuracy=None, drop=None, ece=None, synthetic=True
    )
    plan.model = run.version.model
    plan.save()
    measured = planned_vs_measured(plan)
    assert measured.measurement(MeasureKey.LATENCY_P95_MS, Provenance.LAB).value == 12.0
    assert measured.measurements[MeasureKey.ACCURACY] == ()
    assert measured.measurements[MeasureKey.ECE] == ()


def test_scorecard_evidence_comes_from_the_matching_target(world):
    from roi.measurements import suggested_scores

    _run_with_report(world.a.org, p95=20.0, supported=0.5, accuracy=0.97, drop=0.3, ece=0.02)
    candidates = [
        {"name": "Gateway", "hardware": "x86 mini-PC", "runtime": "onnxruntime CPU"},
        {"name": "Handheld", "hardware": "Zebra TC58", "runtime": "TFLite GPU delegate"},
    ]
    found = suggested_scores(organisation=world.a.org, candidates=candidates)
    assert set(found) == {0}  # only the CPU stack matches the CPU run
    by_category = found[0]
    compat = next(s for c, s in by_category.items() if "compat" in c)
    assert compat.score <= 2  # half the operators supported
    assert compat.evidence == {"operator_coverage": 0.5}
    assert suggested_scores(organisation=world.b.org, candidates=candidates) == {}


def test_a_plan_measures_only_the_model_it_names(client, world):
    plan = make_plan(world.a.org)
    run = _run_with_report(world.a.org, p95=40.0, supported=1.0, accuracy=0.9, drop=0.2, ece=0.02)
    client.force_login(world.a.user(Role.PLANNER))
    url = reverse("roi:plan-model", kwargs={"org": "acme", "plan_id": plan.pk})
    response = client.post(url, {"model": run.version.model_id})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.model == run.version.model
    html = client.get(reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk})).content
    assert "100 %" in html.decode()  # operator coverage shown as a percentage
    # Another organisation's model cannot be linked.
    other = _run_with_report(world.b.org, p95=1.0, supported=1.0, accuracy=1.0, drop=0.0, ece=0.0)
    assert client.post(url, {"model": other.version.model_id}).status_code == 404
    plan.refresh_from_db()
    assert plan.model == run.version.model
