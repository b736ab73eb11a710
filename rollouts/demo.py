"""Demo rollout: the digits classifier validated, signed and running on the demo gateways, and
a 1.1.0 rollout waiting for a second approver.

Runs last of the seeders that need it (apps seed in ``INSTALLED_APPS`` order: the fleet, the
registry's uploads and the telemetry history come first). Idempotent: once the demo rollout
exists nothing is done again, so a rollout a user approved (or a rollback) is never undone by
the next ``make run``.

- ``handwritten-digits`` 1.0.0 (uploaded by demo-approver) is validated on the built-in CPU
  target by the real pipeline, run here synchronously (about eight seconds), signed by
  demo-approver2 (four-eyes: not the uploader) and assigned to the demo gateways.
- 1.1.0 is the INT8 variant that validation produced, registered as a version of its own
  (smaller; its validation compares it with 1.0.0 on the labelled inputs), validated and
  signed the same way.
- A rollout of 1.1.0 planned and submitted by demo-approver: a canary at the first dock with a
  five-minute soak, then every other gateway, devices healthy after one minute of serving, so
  after demo-approver2 approves it the live demo fleet (``manage.py demo_fleet``) completes it
  within minutes.
"""

from __future__ import annotations

from django.db import transaction

from fleet import services as fleet_services
from fleet.models import Device, HardwareTarget, OperatingPolicy, Placement, Site
from modelregistry import assignment_services, signing_services
from modelregistry import services as registry_services
from modelregistry.demo import DIGITS_NAME
from modelregistry.models import MlModel, ModelVersion
from opshero.actors import Actor
from opshero.roles import Role
from telemetry.models import SignalPolicy

from . import services
from .models import Rollout
from .planning import AnalysisSettings, WaveSpec

BASELINE = "1.0.0"
CANDIDATE = "1.1.0"
CANDIDATE_KIND = "int8"
ROLLOUT_NAME = f"{DIGITS_NAME} {CANDIDATE} (INT8) to the demo gateways"
CANARY_SITE = "Rotterdam Dock 7"
# The simulated gateways poll their desired state this often (the policy's minimum is 15 s).
DEMO_POLL_INTERVAL_S = 15
# ... and send their queued telemetry at least this often (the policy's minimum is 10 s).
DEMO_TELEMETRY_INTERVAL_S = 10

# The live demo fleet (``manage.py demo_fleet``) makes 150 inferences a minute per gateway, so
# its model is judged over two-minute windows of at least 200 events: a drift that starts a
# few minutes in raises an alert two windows later. The week of history seeded before this was
# already judged with the telemetry demo's eight-hour windows; later windows use these.
# Thresholds fit windows of ~300 events: the class-mix Jensen-Shannon distance of an undrifted
# gateway is ~0.07 (0.13 at the 99.9th percentile) and the simulator's drift (first class five
# times commoner) gives ~0.27, so 0.15 rather than 0.1. Confidence is judged by effect size
# only (normalised Wasserstein, in units of the baseline's spread of ~0.09, every window): the
# simulator draws confidences around 0.86 while the validation baseline sits near 0.97, about
# 1.2 units that would flag every gateway at the 0.1 default; a drifting gateway loses a
# further 0.15 (about 2.9 units), so 2.0.
LIVE_SIGNAL_POLICY = {
    "window_minutes": 2,
    "min_events": 200,
    "js_threshold": 0.15,
    "large_window_events": 0,
    "wasserstein_threshold": 2.0,
    "consecutive_breaches": 2,
}


def demo_gateways(org) -> list[Device]:
    """The demo's gateways: active near-edge devices on the built-in CPU target (the target
    the demo validates on); the handhelds and tablets are on targets it does not cover."""
    return list(
        Device.objects.filter(
            organization=org,
            status=Device.Status.ACTIVE,
            placement=Placement.NEAR_EDGE,
            hardware_target__builtin_key="cpu",
        ).order_by("serial")
    )


def seed(context: dict, stdout=None) -> None:
    org, users = context["org"], context["users"]
    model = MlModel.objects.filter(organization=org, name=DIGITS_NAME).first()
    if model is None or Rollout.objects.filter(organization=org, name=ROLLOUT_NAME).exists():
        return
    gateways = demo_gateways(org)
    if not gateways:
        return
    planner = Actor.for_user(users["demo-approver"])
    signer = Actor.for_user(users["demo-approver2"])
    target = HardwareTarget.objects.get(organization=None, builtin_key="cpu")

    baseline = model.versions.get(version=BASELINE)
    baseline, run = _validated_and_signed(baseline, target=target, signer=signer)
    if baseline is None:
        _say(stdout, f"Demo rollout: {DIGITS_NAME} {BASELINE} did not pass validation ({run})")
        return
    unassigned = [
        device.pk for device in gateways if not device.assignments.filter(model=model).exists()
    ]
    assignment_services.assign_version(
        organization=org,
        model=model,
        version=baseline,
        device_ids=unassigned,
        actor=Actor.system("demo seed"),
    )

    candidate = model.versions.filter(version=CANDIDATE).first()
    if candidate is None:
        candidate = registry_services.register_variant(
            run=run, kind=CANDIDATE_KIND, actor=planner, version=CANDIDATE
        )
    candidate, candidate_run = _validated_and_signed(candidate, target=target, signer=signer)
    if candidate is None:
        _say(stdout, f"Demo rollout: {DIGITS_NAME} {CANDIDATE} did not pass ({candidate_run})")
        return

    _short_polls(org, gateways, actor=Actor.for_user(users["demo-admin"]))
    SignalPolicy.objects.update_or_create(model=model, defaults=LIVE_SIGNAL_POLICY)
    rollout = _plan_rollout(org, candidate, gateways, planner=planner)
    _say(
        stdout,
        f"Demo rollout: {DIGITS_NAME} {BASELINE} signed and on {len(gateways)} gateways; "
        f"rollout #{rollout.pk} of {CANDIDATE} waits for demo-approver2",
    )


def _say(stdout, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def _validated_and_signed(version: ModelVersion, *, target: HardwareTarget, signer: Actor):
    """(the signed version, its CPU run), or (None, why) when validation did not pass.

    The run is the real one (``execute_validation_run``, as the validation worker runs it),
    inside one transaction with its request: the queued task is published only on commit, so
    the worker that later receives it finds the run finished and leaves it alone."""
    run = None
    if version.status in (ModelVersion.Status.UPLOADED, ModelVersion.Status.REJECTED):
        with transaction.atomic():
            run = registry_services.start_validation(version=version, target=target, actor=signer)
            run = registry_services.execute_validation_run(run_id=run.pk)
        version.refresh_from_db()
    run = run or version.validation_runs.filter(target=target).order_by("-pk").first()
    if version.status == ModelVersion.Status.VALIDATED:
        signing_services.sign_version(version=version, actor=signer, role=Role.APPROVER)
        version.refresh_from_db()
    if version.status != ModelVersion.Status.SIGNED:
        reasons = "; ".join((run.reasons or [])[:2]) if run is not None else ""
        return None, f"{version.get_status_display().lower()} {reasons}".strip()
    return version, run


# The demo's gateway sites accept updates at any hour: the fleet demo gives them night
# windows (Sunday 02:00-05:00...), and a rollout approved in the afternoon would otherwise wait
# for Sunday before its canary got the new version.
ALWAYS_OPEN = [{"day": day, "start": "00:00", "end": "24:00"} for day in range(7)]


def _short_polls(org, gateways: list[Device], *, actor: Actor) -> None:
    """Gateways of the demo sites poll every 15 s and send telemetry every 10 s, so an
    approved wave reaches them at once and its figures arrive while you watch; their
    maintenance windows are open all week."""
    for site in Site.objects.filter(pk__in={device.site_id for device in gateways}):
        if site.maintenance_windows != ALWAYS_OPEN:
            fleet_services.update_site(site=site, actor=actor, maintenance_windows=ALWAYS_OPEN)
        if OperatingPolicy.objects.filter(site=site).exists():
            continue  # somebody set this site's policy: keep it
        fleet_services.set_operating_policy(
            organization=org,
            actor=actor,
            site=site,
            desired_poll_interval_s=DEMO_POLL_INTERVAL_S,
            telemetry_interval_s=DEMO_TELEMETRY_INTERVAL_S,
        )


def _plan_rollout(org, candidate: ModelVersion, gateways: list[Device], *, planner: Actor):
    sites = sorted({device.site_id for device in gateways})
    canary = Site.objects.filter(organization=org, name=CANARY_SITE, pk__in=sites).first()
    canary_ids = [canary.pk] if canary is not None else sites[:1]
    rollout = services.create_rollout(
        organization=org,
        actor=planner,
        role=Role.APPROVER,
        version=candidate,
        name=ROLLOUT_NAME,
        site_ids=sites,
        canary_site_ids=canary_ids,
        waves=[
            WaveSpec(name="Canary", share_percent=None, soak_minutes=5),
            WaveSpec(name="All gateways", share_percent=100.0, soak_minutes=0),
        ],
        analysis=AnalysisSettings(device_soak_minutes=1),
        seed=16,
    )
    return services.submit_rollout(rollout=rollout, actor=planner, role=Role.APPROVER)
