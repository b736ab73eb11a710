"""Fixed query counts, proven for every list URL.

A list page or endpoint runs the same number of queries whatever the number of rows it shows
(``select_related``, ``prefetch_related``, annotations, one aggregate for many counts).

What a "list URL" is, mechanically (``list_url_names``; ``tests/test_query_counts.py`` fails
for any list URL without a probe here):

1. every URL whose view is a DRF ``ListModelMixin`` (``generics.ListAPIView``);
2. every organisation URL whose route has no parameter but the organisation, a collection
   such as ``/o/<org>/fleet/sites/`` or ``/api/v1/orgs/<org>/devices/export/``, unless
   ``NOT_LISTS`` names it with the reason (a form, a POST-only action, the organisation
   itself, a side-by-side comparison of a few chosen objects);
3. the URLs in ``OTHER_LISTS``: lists that neither rule finds (a list under an object id,
   a list that is not a DRF list view).

How to add one: write a builder taking the ``World`` (tenants ``a`` and ``b``) that makes
whatever the URL needs in tenant a and returns a ``ListProbe``: the URL, a role allowed to
read it, and ``add_rows(n)`` that adds n more rows of what the list shows, each with its own
related objects (a new site per device, ...) so that a per-row query cannot hide. The test
measures the URL with N rows and again with 3N rows; the counts must be equal.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.mixins import ListModelMixin

from opshero.actors import Actor
from opshero.roles import Role
from tests.factories import (
    World,
    enroll_device,
    make_device,
    make_group,
    make_member,
    make_org,
    make_site,
)

SYSTEM = Actor.system("tests")
_seq = itertools.count(1)


@dataclass
class ListProbe:
    url: str
    add_rows: Callable[[int], None]
    role: str = Role.VIEWER
    method: str = "GET"
    data: dict[str, Any] | None = field(default=None)


# --- which URLs are lists ---------------------------------------------------------------------

NOT_LISTS: dict[str, str] = {
    "member-add": "POST only",
    "approval-policy": "POST only",
    "org-currency": "POST only",
    "api-org": "the organisation itself",
    "fleet:device-new": "a form",
    "fleet:import": "a form (the created devices are shown once, after the POST)",
    "api-devices-import": "POST only",
    "modelregistry:version-compare": "two chosen versions side by side",
    "api-signing-keys-rotate": "POST only",
    "roi:wizard": "a form",
    "roi:wizard-reset": "POST only",
    "roi:scorecard-new": "a form",
    "roi:scorecard-preview": "POST only, one scorecard",
    "roi:scenario-new": "a form",
    "roi:scenario-compute": "POST only, one scenario",
    "roi:scenario-compare": "at most MAX_COMPARE chosen scenarios side by side",
    "api-roi-assessment-decide": "POST only, one assessment",
    "api-roi-scenario-compute": "POST only, one scenario",
    "rollouts:new": "a form",
    "rollouts:preview": "POST only, one plan (nothing stored)",
}

OTHER_LISTS = {
    "api-group-devices",  # a group's devices, paginated, under the group's id
    "api-public-signing-keys",  # an organisation's keys for a device or ?org=<slug>
    "telemetry:site-health",  # a site's versions, signal windows and alerts
    "telemetry:device-health",  # a device's versions, signal windows and alerts
    "rollouts:detail",  # a rollout's waves, verdicts, timeline and paged device table
}

_ORG_PARAM = "<slug:org>"


def _url_patterns():
    """(name, route, view class or None) for every named URL."""

    def walk(patterns, prefix: str, namespace: str):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, route, ns)
            elif isinstance(p, URLPattern) and p.name:
                yield namespace + p.name, route, getattr(p.callback, "cls", None)

    yield from walk(get_resolver().url_patterns, "", "")


def url_names() -> set[str]:
    return {name for name, _, _ in _url_patterns()}


def list_url_names() -> set[str]:
    """Every list URL by the rules in this module's docstring."""
    found = set(OTHER_LISTS)
    for name, route, view_class in _url_patterns():
        drf_list = view_class is not None and issubclass(view_class, ListModelMixin)
        collection = _ORG_PARAM in route and route.count("<") == 1 and name not in NOT_LISTS
        if drf_list or collection:
            found.add(name)
    return found


# --- probes: opshero ----------------------------------------------------------------------------


def _url(name: str, world: World, **kwargs) -> str:
    return reverse(name, kwargs={"org": world.a.org.slug, **kwargs})


def _add_members(world: World):
    def add(n: int) -> None:
        for _ in range(n):
            make_member(world.a.org, Role.VIEWER)

    return add


def _add_audit_events(world: World):
    from opshero.services import record_audit_event

    def add(n: int) -> None:
        for _ in range(n):
            member = make_member(world.a.org, Role.VIEWER)
            record_audit_event(
                organization=world.a.org,
                actor=Actor.for_user(member.user),
                verb="member.added",
                target=member,
                data={"role": "viewer", "reasons": [], "error": None},
            )

    return add


def _members_page(name: str, role: str = Role.VIEWER) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_members(world), role=role)

    return build


def _audit(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_audit_events(world), role=Role.APPROVER)

    return build


def _overview(world: World) -> ListProbe:
    members, events = _add_members(world), _add_audit_events(world)

    def add(n: int) -> None:
        members(n)
        events(n)

    return ListProbe(_url("overview", world), add, role=Role.ADMIN)


def _api_tokens(world: World) -> ListProbe:
    from opshero.services import issue_api_token

    user = world.a.user(Role.VIEWER)

    def add(n: int) -> None:
        for _ in range(n):
            issue_api_token(user=user, name=f"laptop {next(_seq)}")

    return ListProbe(reverse("api-tokens"), add)


def _api_orgs(world: World) -> ListProbe:
    user = world.a.user(Role.VIEWER)

    def add(n: int) -> None:
        for _ in range(n):
            make_member(make_org(), Role.PLANNER, user=user)

    return ListProbe(reverse("api-orgs"), add)


# --- probes: fleet ------------------------------------------------------------------------------


def _add_devices(world: World, **values):
    """Devices each on a new site and target, half of them online and tagged."""
    from tests.factories import make_target

    org = world.a.org

    def add(n: int) -> None:
        for i in range(n):
            make_device(
                org,
                make_site(org),
                hardware_target=make_target(org),
                status="active",
                last_seen_at=timezone.now() if i % 2 else None,
                tags=["pilot"] if i % 2 else [],
                **values,
            )

    return add


def _devices(name: str, query: str = "") -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world) + query, _add_devices(world))

    return build


def _sites(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        org = world.a.org

        def add(n: int) -> None:
            for _ in range(n):
                make_device(org, make_site(org), status="active", last_seen_at=timezone.now())

        return ListProbe(_url(name, world), add)

    return build


def _add_groups(world: World):
    """Groups of every kind: rules on sites, kinds, tags, placements and targets, plus static
    members, so each group's member count needs its own condition."""
    from tests.factories import make_target

    org = world.a.org

    def add(n: int) -> None:
        for _ in range(n):
            site, target = make_site(org), make_target(org)
            pinned = make_device(org, make_site(org), tags=["pinned"])
            make_device(org, site, hardware_target=target, tags=["pilot"])
            group = make_group(
                org,
                rules={
                    "site_ids": [site.pk],
                    "site_kinds": ["dock"],
                    "tags": ["pilot"],
                    "placements": ["near_edge"],
                    "target_ids": [target.pk],
                },
            )
            group.static_members.add(pinned)
            make_group(org)  # no rules, no members

    return add


def _groups(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_groups(world))

    return build


def _group_preview(world: World) -> ListProbe:
    return ListProbe(
        _url("fleet:group-preview", world),
        _add_devices(world),
        role=Role.ADMIN,
        method="POST",
        data={"site_kinds": ["dock"]},
    )


def _api_group_devices(world: World) -> ListProbe:
    group = make_group(world.a.org, rules={"site_kinds": ["dock"]})
    return ListProbe(_url("api-group-devices", world, group_id=group.pk), _add_devices(world))


def _targets(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        from tests.factories import make_target

        def add(n: int) -> None:
            for _ in range(n):
                make_target(world.a.org)

        return ListProbe(_url(name, world), add)

    return build


def _enrollment_tokens(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        from fleet import services

        org = world.a.org

        def add(n: int) -> None:
            for i in range(n):
                if i % 2:  # a used token shows the device that used it
                    enroll_device(org, make_site(org))
                else:
                    services.create_enrollment_token(
                        organization=org,
                        site=make_site(org),
                        actor=Actor.for_user(world.a.user(Role.ADMIN)),
                    )

        return ListProbe(_url(name, world), add, role=Role.ADMIN)

    return build


# --- probes: model registry ---------------------------------------------------------------------


def _make_version(model, version: str):
    from modelregistry.models import ModelVersion

    return ModelVersion.objects.create(
        model=model,
        version=version,
        artifact=f"artifacts/{uuid.uuid4().hex}.onnx",
        file_name="model.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1024,
        metadata={"opset_imports": []},
    )


def _models(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        from modelregistry.models import MlModel

        def add(n: int) -> None:
            for _ in range(n):
                model = MlModel.objects.create(
                    organization=world.a.org,
                    name=f"model-{next(_seq)}",
                    owner=world.a.user(Role.APPROVER),
                )
                _make_version(model, "1.0")
                _make_version(model, "1.1")

        return ListProbe(_url(name, world), add)

    return build


def _api_model_versions(world: World) -> ListProbe:
    from modelregistry.models import MlModel

    model = MlModel.objects.create(organization=world.a.org, name="versions-probe")
    previous: list = []

    def add(n: int) -> None:
        for _ in range(n):
            version = _make_version(model, f"1.{next(_seq)}")
            if previous:  # a chain of derived versions, so derived_from is followed too
                version.derived_from = previous[-1]
                version.save(update_fields=["derived_from"])
            previous.append(version)

    return ListProbe(_url("api-model-versions", world, model_id=model.pk), add)


def _add_signing_keys(world: World):
    from modelregistry.models import SigningKey

    def add(n: int) -> None:
        for _ in range(n):
            SigningKey.objects.create(
                organization=world.a.org,
                key_id=uuid.uuid4().hex * 2,
                public_pem="-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
                private_key_encrypted=b"",
                status=SigningKey.Status.RETIRED,
                retired_at=timezone.now(),
            )

    return add


def _signing_keys(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_signing_keys(world))

    return build


def _public_signing_keys(world: World) -> ListProbe:
    url = reverse("api-public-signing-keys") + f"?org={world.a.org.slug}"
    return ListProbe(url, _add_signing_keys(world))


# --- probes: planning ---------------------------------------------------------------------------


def _add_planning(world: World):
    """One of each planning object per row, linked as a planner links them."""
    from tests.roi.builders import make_plan, make_scenario, make_scorecard

    def add(n: int) -> None:
        for _ in range(n):
            scenario = make_scenario(world.a.org, name=f"Scenario {next(_seq)}")
            plan = make_plan(world.a.org, scenario=scenario, name=f"Plan {next(_seq)}")
            make_scorecard(world.a.org, name=f"Stacks {next(_seq)}", assessment=plan.assessment)

    return add


def _planning(name: str) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_planning(world))

    return build


# --- probes: telemetry --------------------------------------------------------------------------


def _ingest(world: World) -> ListProbe:
    """Ingested batches (each of a new device, some within the hour), waiting and held ones."""
    from datetime import timedelta

    from telemetry.models import IngestedBatch, LandedBatch
    from telemetry.routers import telemetry_db

    org, db = world.a.org, telemetry_db()

    def add(n: int) -> None:
        now = timezone.now()
        for i in range(n):
            device = make_device(org)
            at = now - timedelta(minutes=5 + 90 * (i % 2))
            IngestedBatch.objects.using(db).create(
                batch_id=uuid.uuid4(),
                organization_id=org.pk,
                device_id=device.pk,
                epoch_id=1,
                received_at=at - timedelta(seconds=2),
                ingested_at=at,
                events=10,
                stored=9,
                duplicates=1,
                conflicts=0,
            )
            LandedBatch.objects.using(db).create(
                organization_id=org.pk,
                device_id=make_device(org).pk,
                epoch="probe",
                epoch_started_at=now,
                event_count=3,
                first_sequence=1,
                last_sequence=3,
                payload=b"[]",
                attempts=99 if i % 2 else 0,
                last_error="boom" if i % 2 else "",
            )

    return ListProbe(_url("telemetry:ingest", world), add)


def _notifications(world: World) -> ListProbe:
    """Channels of both kinds, each with a delivery per status for an alert on a new site and
    device, and a test delivery."""
    from telemetry.models import Alert, AlertNotification, Level, NotificationChannel, SignalKind

    org = world.a.org

    def add(n: int) -> None:
        now = timezone.now()
        for i in range(n):
            number = next(_seq)
            channel = NotificationChannel.objects.create(
                organization=org,
                kind="webhook" if i % 2 else "email",
                name=f"Probe channel {number}",
                url="https://hooks.example.com/probe" if i % 2 else "",
                recipients=[] if i % 2 else ["oncall@example.com"],
            )
            site = make_site(org)
            alert = Alert.objects.create(
                organization=org,
                kind=SignalKind.LATENCY_BUDGET,
                level=Level.DEVICE,
                site=site,
                device=make_device(org, site=site),
                summary=f"Probe alert {number}",
                first_breach_at=now,
                last_breach_at=now,
            )
            for status in AlertNotification.Status.values:
                AlertNotification.objects.create(
                    alert=alert, channel=channel, event="opened", status=status, attempts=1
                )
            AlertNotification.objects.create(channel=channel, event="test")

    return ListProbe(_url("telemetry:notifications", world), add)


def _rollup_rows(org, *, site, device, sha: str, level: int, bucket, resolution) -> None:
    """One inference and one health rollup row of a scope, with a real latency sketch."""
    from telemetry.models import HealthRollup, InferenceRollup
    from telemetry.routers import telemetry_db
    from telemetry.sketch import LatencySketch

    sketch = LatencySketch()
    sketch.add_many([10.0, 20.0, 30.0])
    db = telemetry_db()
    InferenceRollup.objects.using(db).create(
        level=level,
        resolution=resolution,
        bucket_start=bucket,
        organization_id=org.pk,
        site_id=site.pk if level != 2 else 0,
        device_id=device.pk if level == 0 else 0,
        model_sha256=sha,
        model_name=f"probe-{sha[:6]}",
        model_version="1",
        count=3,
        latency=sketch.to_dict(),
        time_to_action=sketch.to_dict(),
        confidence_bins=[0] * 19 + [3],
        confidence_sum=2.9,
        class_counts={"dent": 2, "ok": 1},
        labelled=1,
        correct=1,
        feedback_up=0,
        feedback_down=0,
        offline=0,
    )
    HealthRollup.objects.using(db).get_or_create(
        level=level,
        resolution=resolution,
        bucket_start=bucket,
        organization_id=org.pk,
        site_id=site.pk if level != 2 else 0,
        device_id=device.pk if level == 0 else 0,
        defaults={
            "samples": 2,
            "power_count": 2,
            "power_sum": 10.0,
            "power_max": 6.0,
            "temperature_count": 2,
            "temperature_sum": 100.0,
            "temperature_max": 55.0,
            "temperature_min": 45.0,
            "throttled_samples": 1,
            "online_seconds": 50.0,
            "offline_seconds": 10.0,
            "delivered": 5,
            "duplicates": 1,
            "conflicts": 0,
            "evicted_max": 0,
            "buffered_max": 0,
            "throttled_devices": 1,
        },
    )


def _probe_alert(org, *, site, device, acknowledged_by=None):
    from modelregistry.models import MlModel
    from telemetry.models import Alert, Level, SignalKind

    now = timezone.now()
    return Alert.objects.create(
        organization=org,
        kind=SignalKind.LATENCY_BUDGET,
        level=Level.DEVICE if device else Level.SITE,
        site=site,
        device=device,
        model=MlModel.objects.create(organization=org, name=f"probe-model-{next(_seq)}"),
        summary=f"Probe alert {next(_seq)}",
        status=Alert.Status.ACKNOWLEDGED if acknowledged_by else Alert.Status.OPEN,
        acknowledged_by=acknowledged_by,
        acknowledged_at=now if acknowledged_by else None,
        first_breach_at=now,
        last_breach_at=now,
    )


def _probe_evaluation(org, *, level, site, device, sha, kind, end, evaluated=True):
    from datetime import timedelta

    from telemetry.models import SignalEvaluation
    from telemetry.routers import telemetry_db

    SignalEvaluation.objects.using(telemetry_db()).create(
        organization_id=org.pk,
        kind=kind,
        level=level,
        site_id=site.pk,
        device_id=device.pk if device else 0,
        model_sha256=sha,
        window_start=end - timedelta(minutes=10),
        window_end=end,
        events=600 if evaluated else 10,
        evaluated=evaluated,
        breached=False,
        value=0.01 if evaluated else None,
        threshold=0.1,
        statistic="jensen_shannon",
        baseline="validation" if evaluated else "",
        reason="" if evaluated else "not evaluated: too few events",
    )


def _fleet_health(world: World) -> ListProbe:
    """Sites with this hour's rollups (each its own device) and a live alert on each."""
    from telemetry.models import Level, Resolution
    from telemetry.rollups import hour_of

    org = world.a.org

    def add(n: int) -> None:
        now = timezone.now()
        for _ in range(n):
            site = make_site(org)
            device = make_device(org, site=site)
            for level in (Level.SITE, Level.DEVICE):
                _rollup_rows(
                    org,
                    site=site,
                    device=device,
                    sha="f" * 64,
                    level=level,
                    bucket=hour_of(now),
                    resolution=Resolution.HOUR,
                )
            _probe_alert(org, site=site, device=device)

    return ListProbe(_url("telemetry:health", world), add)


def _alerts(world: World) -> ListProbe:
    """Alerts, each on a new site, device and model, half acknowledged by a new member."""
    org = world.a.org

    def add(n: int) -> None:
        for i in range(n):
            site = make_site(org)
            member = make_member(org, Role.APPROVER) if i % 2 else None
            _probe_alert(
                org,
                site=site,
                device=make_device(org, site=site),
                acknowledged_by=member.user if member else None,
            )

    return ListProbe(_url("telemetry:alerts", world) + "?status=live", add)


def _compare(world: World) -> ListProbe:
    """Two versions, and devices (each at a new site) that ran both."""
    from telemetry.models import Level, Resolution
    from telemetry.rollups import hour_of

    org = world.a.org
    sha_a, sha_b = "a" * 64, "b" * 64

    bucket = hour_of(timezone.now())
    first = make_device(org)
    for sha in (sha_a, sha_b):  # the organisation rows that list the versions seen
        _rollup_rows(
            org,
            site=first.site,
            device=first,
            sha=sha,
            level=Level.ORGANIZATION,
            bucket=bucket,
            resolution=Resolution.HOUR,
        )

    def add(n: int) -> None:
        for _ in range(n):
            site = make_site(org)
            device = make_device(org, site=site)
            for sha in (sha_a, sha_b):
                _rollup_rows(
                    org,
                    site=site,
                    device=device,
                    sha=sha,
                    level=Level.DEVICE,
                    bucket=bucket,
                    resolution=Resolution.HOUR,
                )

    return ListProbe(_url("telemetry:compare", world) + f"?a={sha_a}&b={sha_b}", add)


def _scope_health(name: str) -> Callable[[World], ListProbe]:
    """A site or device page: more versions (rows at several buckets), evaluations of every
    signal (evaluated or not) and alerts, each with its own model."""

    def build(world: World) -> ListProbe:
        from datetime import timedelta

        from telemetry.models import Level, Resolution, SignalKind
        from telemetry.rollups import hour_of

        org = world.a.org
        site = make_site(org)
        device = make_device(org, site=site)
        is_site = name == "telemetry:site-health"
        level = Level.SITE if is_site else Level.DEVICE

        def add(n: int) -> None:
            now = timezone.now()
            for _ in range(n):
                sha = uuid.uuid4().hex * 2
                for back in (0, 1):
                    _rollup_rows(
                        org,
                        site=site,
                        device=device,
                        sha=sha,
                        level=level,
                        bucket=hour_of(now) - timedelta(hours=back + next(_seq) % 20),
                        resolution=Resolution.HOUR,
                    )
                for i, kind in enumerate(SignalKind.values):
                    _probe_evaluation(
                        org,
                        level=level,
                        site=site,
                        device=None if is_site else device,
                        sha=sha,
                        kind=kind,
                        end=now - timedelta(minutes=next(_seq) % 600),
                        evaluated=bool(i % 2),
                    )
                _probe_alert(org, site=site, device=None if is_site else device)

        kwargs = {"site_id": site.pk} if is_site else {"device_id": device.pk}
        return ListProbe(_url(name, world, **kwargs), add)

    return build


# --- the registry, one probe per list URL name --------------------------------------------------


# --- probes: rollouts ---------------------------------------------------------------------------


def _add_rollouts(world: World, status: str):
    """n rollouts, each of its own model, versions (the one the fleet runs and the candidate,
    with a passed run), planner and devices at a site of its own."""
    from fleet.models import HardwareTarget
    from modelregistry.models import MlModel, ValidationRun
    from rollouts.models import DeploymentAction, Rollout, Wave

    target = HardwareTarget.objects.get(builtin_key="cpu")

    def add(n: int) -> None:
        for _ in range(n):
            planner = make_member(world.a.org, Role.APPROVER).user
            model = MlModel.objects.create(
                organization=world.a.org, name=f"rollout-model-{next(_seq)}", owner=planner
            )
            running, candidate = _make_version(model, "1.0"), _make_version(model, "1.1")
            for version in (running, candidate):
                ValidationRun.objects.create(
                    version=version,
                    target=target,
                    number=1,
                    status="passed",
                    report={"passed": True, "steps": []},
                    report_digest=uuid.uuid4().hex * 2,
                    finished_at=timezone.now(),
                )
            rollout = Rollout.objects.create(
                organization=world.a.org,
                model=model,
                version=candidate,
                name=f"rollout {next(_seq)}",
                status=status,
                seed=1,
                created_by=planner,
                submitted_at=timezone.now(),
            )
            wave = Wave.objects.create(rollout=rollout, number=0, name="Canary", device_count=2)
            site = make_site(world.a.org, name=f"rollout site {next(_seq)}")
            for _ in range(2):
                device = make_device(world.a.org, site=site)
                DeploymentAction.objects.create(
                    organization=world.a.org,
                    rollout=rollout,
                    wave=wave,
                    device=device,
                    model=model,
                    site_id=site.pk,
                    previous_version=running,
                )

    return add


def _rollouts(name: str, status: str, role: str = Role.VIEWER) -> Callable[[World], ListProbe]:
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world), _add_rollouts(world, status), role=role)

    return build


def _rollout_detail(world: World) -> ListProbe:
    """One rollout; the rows are its devices (each at a site of its own) and their actions."""
    from rollouts.models import DeploymentAction, Rollout

    _add_rollouts(world, "running")(1)
    rollout = Rollout.objects.filter(organization=world.a.org).latest("pk")
    wave = rollout.waves.get()

    def add(n: int) -> None:
        for _ in range(n):
            site = make_site(world.a.org, name=f"rollout site {next(_seq)}")
            device = make_device(world.a.org, site=site)
            DeploymentAction.objects.create(
                organization=world.a.org,
                rollout=rollout,
                wave=wave,
                device=device,
                model_id=rollout.model_id,
                site_id=site.pk,
                status="failed",
                reason_code=f"code-{next(_seq)}",
            )

    return ListProbe(_url("rollouts:detail", world, rollout_id=rollout.pk), add)


PROBES: dict[str, Callable[[World], ListProbe]] = {
    # platform
    "overview": _overview,
    "members": _members_page("members"),
    "audit": _audit("audit"),
    "api-members": _members_page("api-members"),
    "api-audit-events": _audit("api-audit-events"),
    "api-tokens": _api_tokens,
    "api-orgs": _api_orgs,
    # fleet pages
    "fleet:devices": _devices("fleet:devices", "?ordering=-status&tag=pilot"),
    "fleet:export": _devices("fleet:export"),
    "fleet:sites": _sites("fleet:sites"),
    "fleet:enroll": _enrollment_tokens("fleet:enroll"),
    "fleet:groups": _groups("fleet:groups"),
    "fleet:group-preview": _group_preview,
    "fleet:targets": _targets("fleet:targets"),
    # fleet API
    "api-devices": _devices("api-devices", "?ordering=site&status=online"),
    "api-devices-export": _devices("api-devices-export"),
    "api-sites": _sites("api-sites"),
    "api-groups": _groups("api-groups"),
    "api-group-devices": _api_group_devices,
    "api-targets": _targets("api-targets"),
    "api-enrollment-tokens": _enrollment_tokens("api-enrollment-tokens"),
    # model registry
    "modelregistry:models": _models("modelregistry:models"),
    "modelregistry:signing-keys": _signing_keys("modelregistry:signing-keys"),
    "api-models": _models("api-models"),
    "api-model-versions": _api_model_versions,
    "api-signing-keys": _signing_keys("api-signing-keys"),
    "api-public-signing-keys": _public_signing_keys,
    # planning
    "roi:home": _planning("roi:home"),
    "roi:assessments": _planning("roi:assessments"),
    "roi:scorecards": _planning("roi:scorecards"),
    "roi:scenarios": _planning("roi:scenarios"),
    "roi:plans": _planning("roi:plans"),
    "api-roi-assessments": _planning("api-roi-assessments"),
    "api-roi-scorecards": _planning("api-roi-scorecards"),
    "api-roi-scenarios": _planning("api-roi-scenarios"),
    "api-roi-plans": _planning("api-roi-plans"),
    # telemetry
    "telemetry:ingest": _ingest,
    "telemetry:notifications": _notifications,
    "telemetry:health": _fleet_health,
    "telemetry:alerts": _alerts,
    "telemetry:compare": _compare,
    "telemetry:site-health": _scope_health("telemetry:site-health"),
    "telemetry:device-health": _scope_health("telemetry:device-health"),
    # rollouts
    "rollouts:list": _rollouts("rollouts:list", "pending_approval", Role.APPROVER),
    "rollouts:approvals": _rollouts("rollouts:approvals", "pending_approval", Role.APPROVER),
    "rollouts:detail": _rollout_detail,
}


def _merge_review() -> None:
    """The review app keeps its list probes beside its tests (tests/review/query_cases.py)."""
    from tests.review import query_cases

    PROBES.update(query_cases.PROBES)
    NOT_LISTS.update(query_cases.NOT_LISTS)
    OTHER_LISTS.update(query_cases.OTHER_LISTS)


_merge_review()
