"""The loop of issue 17 end to end: a dock gateway's low-confidence case reaches the review queue,
a reviewer corrects it from the keyboard, the site's measured accuracy moves, and after the
retention period the sample and its key are gone.

Real parts throughout: the reference agent (signed desired state, verified install, onnxruntime
inference, its encrypted evidence queue, signed uploads) against the live server, a real Celery
worker expanding the telemetry, the beat task's service linking the evidence, Chromium driving the
queue by keyboard, and the retention task's service deleting object and key.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from fleet import services as fleet_services
from gateway.agent import Agent
from gateway.config import AgentConfig
from modelregistry import assignment_services
from modelregistry import services as registry
from opshero.actors import Actor
from opshero.roles import Role
from review import services
from review.field_accuracy import field_accuracy_for_org
from review.models import EvidenceSample, Review
from telemetry.models import InferenceEvent
from telemetry.routers import telemetry_db
from tests.conftest import browser_login
from tests.factories import PASSWORD, enroll_device, make_site
from tests.rollouts.fleet import RUNTIME, validate_and_sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CLASSES = ["ok", "dent", "scratch", "crush"]
INPUT = [[0.1, 0.2, 0.3, 0.4]]


def _wait_for(predicate, *, timeout_s: float = 60.0, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def dock_gateway(world, live_server, tmp_path):
    from django.core.files.base import ContentFile
    from onnx import TensorProto, helper

    from fleet.models import HardwareTarget
    from modelregistry import signing_services
    from tests import onnx_models

    org = world.a.org
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    with transaction.atomic():
        signing_services.create_signing_key(organization=org, actor=admin)
        target = HardwareTarget.objects.get(builtin_key="cpu")
        model = registry.create_model(organization=org, actor=approver, name="dock damage")
        initializer = helper.make_tensor("B", TensorProto.FLOAT, [4], [0.5, -0.5, 1.0, -1.0])
        data = onnx_models.tiny_model(initializer=initializer).SerializeToString()
        version = registry.upload_version(
            model=model,
            actor=admin,
            artifact=ContentFile(data, name="tiny.onnx"),
            version="1.0.0",
            io_contract={
                "labels": CLASSES,
                "score_output": "Y",
                "scores": "logits",
                "preprocessing": {
                    "layout": "NC",
                    "scale": 1.0,
                    "mean": [],
                    "std": [],
                    "color_order": "none",
                },
                "intended_use": "tests: dock damage",
            },
        )
        version = validate_and_sign(version, target, approver, "c" * 64)
        site = make_site(org, name="Dock 7", kind="dock")
        # Every case is a low-confidence case here (threshold 1.0), and every one is sent.
        fleet_services.set_operating_policy(
            organization=org,
            actor=admin,
            site=site,
            review_threshold=1.0,
            evidence_sampling_rate=1.0,
            evidence_audit_rate=0.0,
            evidence_daily_cap=20,
            desired_poll_interval_s=15,
        )
        device, key = enroll_device(org, site=site)
        device.hardware_target = target
        device.runtime_version = RUNTIME
        device.save()
        assignment_services.assign_version(
            organization=org,
            model=model,
            version=version,
            device_ids=[device.pk],
            actor=Actor.system("tests"),
        )
    agent = Agent(
        tmp_path / "state",
        AgentConfig(listen="", min_poll_interval_s=1),
        server=live_server.url,
        device_id=str(device.uid),
        private_key=key,
    )
    agent.start()
    yield org, site, device, version, agent
    agent.control.close()
    agent.sender.transport.close()
    agent.queue.close()


def test_a_dock_case_is_reviewed_by_keyboard_moves_accuracy_and_is_deleted_on_schedule(
    dock_gateway, celery_worker, page_factory, live_server, world
):
    org, site, device, version, agent = dock_gateway
    assert agent.poll_desired() is True
    answers = [agent.infer("dock damage", INPUT) for _ in range(2)]
    assert all(a["needs_review"] for a in answers)
    predicted = answers[0]["prediction"]
    assert predicted in CLASSES

    # Telemetry first (the uploader waits until an event's batch was accepted), then evidence.
    assert agent.drain(flush=True) >= 1
    db = telemetry_db()
    _wait_for(
        lambda: InferenceEvent.objects.using(db).filter(device_id=device.pk).count() == 2,
        what="the worker to store both inference events",
    )
    assert agent.drain_evidence() == 2
    assert EvidenceSample.objects.filter(device=device).count() == 2
    services.link_pending_evidence()  # what beat runs every 15 s
    samples = list(EvidenceSample.objects.filter(device=device).order_by("sequence"))
    assert [s.status for s in samples] == ["linked", "linked"]
    assert {s.predicted_class for s in samples} == {predicted}
    assert {s.model_version_id for s in samples} == {version.pk}
    assert samples[0].reason == "low_confidence" and samples[0].media_type == "application/json"

    # One case confirmed already: the site's measured accuracy is 1 of 1.
    services.submit_review(
        sample=samples[0], actor=Actor.for_user(world.a.user(Role.APPROVER)), true_class=predicted
    )

    def measured():
        (row,) = field_accuracy_for_org(org=org, site_id=site.pk).rows
        return row.summary.reviewed

    before = measured()
    assert (before.successes, before.total) == (1, 1)

    # The reviewer corrects the other case from the keyboard: the key of another class, Enter.
    page, _ = page_factory()
    browser_login(page, live_server, world.a.user(Role.REVIEWER).username, PASSWORD)
    page.goto(live_server.url + reverse("review:queue", kwargs={"org": org.slug}))
    item = page.locator(f"#review-item[data-sample='{samples[1].pk}']")
    expect(item).to_be_visible()
    expect(item.get_by_test_id("review-prediction")).to_have_text(predicted)
    truth = next(name for name in CLASSES if name != predicted)
    page.keyboard.press(str(CLASSES.index(truth) + 1))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("review-remaining")).to_have_attribute("data-count", "0")
    review = _wait_for(
        lambda: Review.objects.filter(sample=samples[1]).first(), what="the review to be stored"
    )
    assert (review.verdict, review.true_class, review.reviewer.username) == (
        "corrected",
        truth,
        world.a.user(Role.REVIEWER).username,
    )
    after = measured()
    assert (after.successes, after.total) == (1, 2)
    assert after.value == pytest.approx(0.5)

    # After the retention period the samples and their keys are gone; the reviews stay.
    paths = [Path(settings.EVIDENCE_ROOT) / s.object_name for s in samples]
    assert all(path.exists() for path in paths)
    later = timezone.now() + timedelta(days=settings.EVIDENCE_RETENTION_DAYS, minutes=1)
    assert services.apply_evidence_retention(now=later) == 2
    for sample, path in zip(samples, paths, strict=True):
        sample.refresh_from_db()
        assert (sample.status, sample.wrapped_key) == ("deleted", None)
        assert not path.exists()
    assert Review.objects.filter(sample__in=samples).count() == 2
    page.goto(
        live_server.url
        + reverse("review:content", kwargs={"org": org.slug, "sample_id": samples[1].pk})
    )
    assert "deleted" in page.content().lower()
    assert measured().total == 2  # accuracy over time outlives the evidence
