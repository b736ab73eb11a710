"""A latency gate made inconclusive by a wide interval: the run needs review, and an approver
accepts or rejects it with a reason (service, HTML page, API), audited; others are refused."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from fleet.models import HardwareTarget
from modelregistry import services
from modelregistry.models import ModelVersion, ValidationRun
from onnxcheck.gates import GateThresholds, evaluate_gates
from onnxcheck.pipeline import ValidationReport
from onnxcheck.results import StepResult
from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from tests import onnx_models

pytestmark = pytest.mark.django_db

R = ValidationRun.Status
V = ModelVersion.Status


def _wide_interval_report(**kwargs) -> ValidationReport:
    """What run_validation returns when the P95's interval [8, 14] ms straddles a 10 ms budget
    (after its re-measure): everything else passed."""
    latency = {
        "label": "batch=1",
        "runs": 300,
        "p95_ms": 9.6,
        "p95_ci_low_ms": 8.0,
        "p95_ci_high_ms": 14.0,
        "other_cpu_cores": 0.05,
    }
    steps = [
        StepResult("integrity", "passed", 1.0),
        StepResult("inputs", "passed", 1.0, data={"has_labels": False}),
        StepResult(
            "compatibility",
            "passed",
            1.0,
            data={
                "target": {"name": "cpu"},
                "unsupported_node_count": 0,
                "unsupported": [],
                "constraints": [],
            },
        ),
        StepResult("latency", "passed", 1.0, data={"buckets": [latency]}),
    ]
    gates = evaluate_gates(
        steps=steps,
        thresholds=GateThresholds(
            latency_budget_ms=kwargs["gates"].latency_budget_ms,
            max_int8_accuracy_drop_points=None,
            max_ece=None,
        ),
    )
    steps.append(gates)
    return ValidationReport(
        model_file="model.onnx",
        expected_sha256=kwargs["expected_sha256"],
        target={"name": "cpu"},
        metadata=None,
        inputs=None,
        steps=steps,
        passed=gates.data["passed"],
        verdict=gates.data["verdict"],
        reasons=gates.data["reasons"],
        started_at="2026-12-01T00:00:00Z",
        finished_at="2026-12-01T00:00:01Z",
        environment={"host_shared": kwargs.get("host_shared")},
    )


@pytest.fixture
def run_in_review(world, monkeypatch):
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    model = services.create_model(
        organization=world.a.org, actor=approver, name="digits", latency_budget_ms=10
    )
    version = services.upload_version(
        model=model,
        actor=approver,
        artifact=ContentFile(onnx_models.digits_mlp().model_path.read_bytes(), name="d.onnx"),
        version="1.0",
        shape_buckets={"X[0]": [1]},
    )
    monkeypatch.setattr("onnxcheck.pipeline.run_validation", _wide_interval_report)

    def make() -> ValidationRun:
        run = services.start_validation(
            version=version, target=HardwareTarget.objects.get(builtin_key="cpu"), actor=approver
        )
        return services.execute_validation_run(run_id=run.pk)

    return make


def _review_events(org) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=org, verb="validation.reviewed"))


def test_an_inconclusive_latency_gate_puts_the_run_in_review(world, run_in_review, settings):
    settings.VALIDATION_HOST_SHARED = True
    run = run_in_review()
    assert run.status == R.NEEDS_REVIEW and run.finished_at is not None
    assert run.version.status == V.VALIDATING  # not signable while nobody has decided
    assert run.report["verdict"] == "inconclusive"
    assert run.reasons == [
        "P95 9.60 ms [8.00\u201314.0], budget 10 ms: inconclusive; the interval contains the "
        "budget (bucket batch=1, 300 runs)"
    ]
    assert run.report["environment"]["host_shared"] is True
    # A redelivered message leaves a run in review alone.
    again = services.execute_validation_run(run_id=run.pk)
    assert (again.status, again.attempts) == (R.NEEDS_REVIEW, 1)


def test_service_refuses_without_a_reason_and_outside_review(world, run_in_review):
    run = run_in_review()
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    with pytest.raises(InvalidInput) as missing:
        services.review_validation_run(run=run, actor=approver, decision="accept", reason="  ")
    assert missing.value.fields == {"reason": ["Required."]}
    services.review_validation_run(
        run=run, actor=approver, decision="reject", reason="P95 13 ms on the gateway"
    )
    run.refresh_from_db()
    assert (run.status, run.version.status) == (R.FAILED, V.REJECTED)
    with pytest.raises(Conflict):
        services.review_validation_run(run=run, actor=approver, decision="accept", reason="x")


def test_an_approver_accepts_on_the_page_and_a_viewer_cannot(world, run_in_review, login):
    run = run_in_review()
    org = world.a.org.slug
    url = f"/o/{org}/models/runs/{run.pk}/review/"
    page = f"/o/{org}/models/versions/{run.version_id}/?run={run.pk}"

    viewer = login(world.a.user(Role.VIEWER))
    shown = viewer.get(page)
    assert b'data-testid="run-review"' in shown.content
    assert b'data-testid="review-form"' not in shown.content  # only approvers decide
    refused = viewer.post(url, {"decision": "accept", "reason": "looks fine"})
    assert refused.status_code in (403, 404)
    run.refresh_from_db()
    assert run.status == R.NEEDS_REVIEW and _review_events(world.a.org) == []

    approver = login(world.a.user(Role.APPROVER))
    assert b'data-testid="review-form"' in approver.get(page).content
    typed = approver.post(url, {"decision": "accept", "reason": ""})
    assert typed.status_code == 422 and b"This field is required" in typed.content
    done = approver.post(url, {"decision": "accept", "reason": "P95 9 ms on the device"})
    assert done.status_code == 302 and done["Location"] == page
    run.refresh_from_db()
    assert (run.status, run.review_reason) == (R.PASSED, "P95 9 ms on the device")
    assert run.reviewed_by == world.a.user(Role.APPROVER)
    assert run.version.status == V.VALIDATED  # signable now, as after a passed run
    (event,) = _review_events(world.a.org)
    assert event.data["decision"] == "accept" and event.data["reason"] == "P95 9 ms on the device"
    assert event.data["latency_gate"] == run.reasons
    reviewed = approver.get(page).content
    assert b'data-testid="run-reviewed"' in reviewed and b"P95 9 ms on the device" in reviewed


def test_an_approver_rejects_through_the_api(world, run_in_review, api_client):
    run = run_in_review()
    url = f"/api/v1/orgs/{world.a.org.slug}/validation-runs/{run.pk}/review/"

    api_client.force_authenticate(world.a.user(Role.VIEWER))
    refused = api_client.post(url, {"decision": "reject", "reason": "slow"}, format="json")
    assert refused.status_code == 403
    api_client.force_authenticate(world.a.user(Role.APPROVER))
    missing = api_client.post(url, {"decision": "reject"}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["fields"]
    done = api_client.post(url, {"decision": "reject", "reason": "13 ms on site"}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["status"], body["review_reason"]) == ("failed", "13 ms on site")
    assert body["reviewed_by"] == world.a.user(Role.APPROVER).username
    run.refresh_from_db()
    assert run.version.status == V.REJECTED
    assert [e.data["decision"] for e in _review_events(world.a.org)] == ["reject"]
    again = api_client.post(url, {"decision": "accept", "reason": "changed my mind"}, format="json")
    assert again.status_code == 409
