"""Organisation isolation, proven for every organisation-scoped URL.

How to use it from a new app:

1. Write a probe builder: a function taking the ``World`` (two tenants, ``a`` and ``b``)
   that creates whatever object the URL needs *in tenant a* and returns the ``Probe``s
   (method, URL, body) that touch it.
2. Register it in ``CASES`` under the URL's name. ``tests/opshero/test_tenancy.py`` fails
   for any organisation-scoped URL (one with ``<org>`` in its route) that has no case.

For each probe the shared test checks that an outsider (tenant b's admin, a member of
another organisation with every permission there) gets 404 from both the HTML and the API
side, that nothing the outsider sent changed anything, and that an insider with the
right role gets the expected status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from opshero.models import AuditEvent
from opshero.roles import Role
from tests.factories import World


@dataclass
class Probe:
    method: str
    url: str
    data: dict[str, Any] | None = None
    insider_role: str = Role.ADMIN
    insider_status: int = 200
    # For writes: returns a value that must be equal before and after the outsider's request.
    state: Callable[[], Any] | None = None
    json_body: bool = field(default=False)


def org_scoped_url_names() -> set[str]:
    """Every named URL whose route contains the organisation parameter."""
    found: set[str] = set()

    def walk(patterns, prefix: str, namespace: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = namespace
                if p.namespace:
                    ns = f"{namespace}{p.namespace}:"
                walk(p.url_patterns, route, ns)
            elif isinstance(p, URLPattern) and p.name and "<slug:org>" in route:
                found.add(namespace + p.name)

    walk(get_resolver().url_patterns, "", "")
    return found


def _send(client, probe: Probe):
    method = getattr(client, probe.method.lower())
    if probe.data is None:
        return method(probe.url)
    if probe.json_body:
        return method(probe.url, data=json.dumps(probe.data), content_type="application/json")
    return method(probe.url, data=probe.data)


def assert_outsider_gets_404(client, probe: Probe, outsider) -> None:
    client.force_login(outsider)
    before = probe.state() if probe.state else None
    events_before = AuditEvent.objects.count()
    response = _send(client, probe)
    assert response.status_code == 404, (
        f"{probe.method} {probe.url} answered {response.status_code} to a member of another "
        "organisation; it must be 404"
    )
    if probe.url.startswith("/api/"):
        assert response.json()["error"]["code"] == "not_found"
    if probe.state:
        assert probe.state() == before, f"{probe.method} {probe.url} changed state for an outsider"
    assert AuditEvent.objects.count() == events_before
    client.logout()


def assert_insider_allowed(client, probe: Probe, insider) -> None:
    client.force_login(insider)
    response = _send(client, probe)
    assert response.status_code == probe.insider_status, (
        f"{probe.method} {probe.url} answered {response.status_code} to a {probe.insider_role}; "
        f"expected {probe.insider_status}"
    )
    client.logout()


# --- Cases, one per organisation-scoped URL name ------------------------------------------------


def _org_page(name: str, role: str = Role.ADMIN) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        return [Probe("GET", reverse(name, kwargs={"org": world.a.org.slug}), insider_role=role)]

    return build


def _member_write(name: str, data: dict, insider_status: int) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        target = world.a.members[Role.VIEWER]
        url = reverse(name, kwargs={"org": world.a.org.slug, "membership_id": target.pk})

        def state():
            return list(world.a.org.memberships.order_by("pk").values_list("pk", "role"))

        return [Probe("POST", url, data=data, insider_status=insider_status, state=state)]

    return build


def _member_add(world: World) -> list[Probe]:
    from tests.factories import make_user

    newcomer = make_user()

    def state():
        return list(world.a.org.memberships.order_by("pk").values_list("pk", "role"))

    url = reverse("member-add", kwargs={"org": world.a.org.slug})
    return [
        Probe(
            "POST",
            url,
            data={"username": newcomer.username, "role": "viewer"},
            insider_status=302,
            state=state,
        )
    ]


def _approval_policy(world: World) -> list[Probe]:
    from opshero.models import Organization

    def state():
        return Organization.objects.filter(pk=world.a.org.pk).values_list("single_approver")[0]

    url = reverse("approval-policy", kwargs={"org": world.a.org.slug})
    return [
        Probe(
            "POST",
            url,
            data={"single_approver": "on", "reason": "a single approver"},
            insider_status=302,
            state=state,
        )
    ]


def _org_currency(world: World) -> list[Probe]:
    from opshero.models import Organization

    def state():
        return Organization.objects.filter(pk=world.a.org.pk).values_list("currency")[0]

    url = reverse("org-currency", kwargs={"org": world.a.org.slug})
    return [Probe("POST", url, data={"currency": "GBP"}, insider_status=302, state=state)]


def _api_member(world: World) -> list[Probe]:
    target = world.a.members[Role.VIEWER]
    url = reverse("api-member", kwargs={"org": world.a.org.slug, "membership_id": target.pk})

    def state():
        return list(world.a.org.memberships.order_by("pk").values_list("pk", "role"))

    return [
        Probe("GET", url),
        Probe("PATCH", url, data={"role": "planner"}, json_body=True, state=state),
    ]


# --- fleet --------------------------------------------------------------------------------------


def _fleet_state(world: World):
    from fleet.models import Device, DeviceGroup, EnrollmentToken, HardwareTarget, Site

    org = world.a.org

    def state():
        return (
            list(Site.objects.filter(organization=org).order_by("pk").values_list("pk", "name")),
            list(
                Device.objects.filter(organization=org)
                .order_by("pk")
                .values_list("pk", "name", "status", "site_id")
            ),
            list(DeviceGroup.objects.filter(organization=org).values_list("pk", "name", "rules")),
            list(HardwareTarget.objects.filter(organization=org).values_list("pk", "name")),
            EnrollmentToken.objects.filter(organization=org).count(),
            list(
                Device.objects.filter(organization=org).values_list(
                    "credentials__fingerprint", "credentials__revoked_at"
                )
            ),
            _policy_state(org),
        )

    return state


def _policy_state(org):
    from fleet.models import OperatingPolicy, OperatingPolicyRevision

    return (
        list(
            OperatingPolicy.objects.filter(organization=org)
            .order_by("pk")
            .values_list("pk", "site_id", "group_id", "revision", "review_threshold")
        ),
        OperatingPolicyRevision.objects.filter(organization=org).count(),
    )


_POLICY_FORM = {
    "review_threshold": "0.8",
    "evidence_sampling_rate": "0.1",
    "evidence_audit_rate": "0.01",
    "evidence_daily_cap": "5",
    "telemetry_interval_s": "120",
    "desired_poll_interval_s": "60",
}


def _operating_policy(name: str) -> Callable[[World], list[Probe]]:
    """Tenant a's site or group with a policy already set (so a clear has one to remove)."""

    def build(world: World) -> list[Probe]:
        from fleet import services
        from opshero.actors import Actor
        from tests.factories import make_group, make_site

        org = world.a.org
        site, group = make_site(org, "Policy Dock"), make_group(org, "Policy lane")
        for scope in ({"site": site}, {"group": group}):
            services.set_operating_policy(
                organization=org, actor=Actor.system("tests"), review_threshold=0.7, **scope
            )
        ids = {"group_id": group.pk} if "group" in name else {"site_id": site.pk}
        url = reverse(name, kwargs={"org": org.slug, **ids})
        state = _fleet_state(world)
        if name.startswith("api-"):
            probes = [Probe("GET", url, insider_role=Role.VIEWER)]
            body = {"review_threshold": 0.8, "telemetry_interval_s": 120}
            probes.append(Probe("PUT", url, data=body, json_body=True, state=state))
            if "group" in name:
                probes.append(Probe("DELETE", url, insider_status=204, state=state))
            return probes
        data = {} if name.endswith("-clear") else _POLICY_FORM
        return [
            Probe(
                "POST",
                url,
                data=data,
                insider_role=Role.APPROVER,
                insider_status=302,
                state=state,
            )
        ]

    return build


def _fleet_objects(world: World) -> dict:
    from tests.factories import enroll_device, make_group, make_site, make_target

    org = world.a.org
    site = make_site(org, "Isolation Dock")
    device, _ = enroll_device(org, site)
    return {
        "org": org.slug,
        "site": site,
        "empty_site": make_site(org, "Empty Dock"),
        "device": device,
        "group": make_group(org, "Isolation group", {"site_ids": [site.pk]}),
        "target": make_target(org, "Isolation target"),
    }


def _fleet_get(name: str, role: str = Role.VIEWER, **ids) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        objs = _fleet_objects(world)
        kwargs = {"org": objs["org"], **{k: objs[v].pk for k, v in ids.items()}}
        return [Probe("GET", reverse(name, kwargs=kwargs), insider_role=role)]

    return build


def _fleet_post(
    name: str,
    data: dict | None = None,
    status: int = 302,
    role: str = Role.ADMIN,
    json_body: bool = False,
    method: str = "POST",
    **ids,
) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        objs = _fleet_objects(world)
        kwargs = {"org": objs["org"], **{k: objs[v].pk for k, v in ids.items()}}
        payload = data(objs) if callable(data) else (data or {})
        return [
            Probe(
                method,
                reverse(name, kwargs=kwargs),
                data=payload,
                insider_role=role,
                insider_status=status,
                state=_fleet_state(world),
                json_body=json_body,
            )
        ]

    return build


def _telemetry_ingest(world: World) -> list[Probe]:
    """Tenant a's ingest page, with a held batch of a's device on it."""
    from django.utils import timezone

    from telemetry.models import LandedBatch
    from telemetry.routers import telemetry_db
    from tests.factories import make_device

    device = make_device(world.a.org)
    LandedBatch.objects.using(telemetry_db()).create(
        organization_id=world.a.org.pk,
        device_id=device.pk,
        epoch="isolation",
        epoch_started_at=timezone.now(),
        event_count=1,
        first_sequence=1,
        last_sequence=1,
        payload=b"[]",
        attempts=99,
        last_error="tenant a's failure",
    )
    url = reverse("telemetry:ingest", kwargs={"org": world.a.org.slug})
    return [Probe("GET", url, insider_role=Role.VIEWER)]


def _notification_state(world: World):
    from telemetry.models import AlertNotification, NotificationChannel

    def state():
        return (
            list(
                NotificationChannel.objects.filter(organization=world.a.org)
                .order_by("pk")
                .values_list("pk", "name", "enabled", "events")
            ),
            AlertNotification.objects.filter(channel__organization=world.a.org).count(),
        )

    return state


def _telemetry_notifications(world: World) -> list[Probe]:
    """Tenant a's channel page: read by a viewer, a webhook added by an admin (the answer
    shows the secret, 200)."""
    from opshero.actors import Actor
    from telemetry import notifications

    notifications.create_channel(
        organization=world.a.org,
        actor=Actor.system("tests"),
        kind="email",
        name="Tenant a's on-call",
        recipients=["oncall@a.example"],
    )
    url = reverse("telemetry:notifications", kwargs={"org": world.a.org.slug})
    data = {
        "kind": "webhook",
        "name": "Probe hook",
        "url": "https://hooks.example.com/opshero",
        "events": ["opened", "resolved"],
    }
    return [
        Probe("GET", url, insider_role=Role.VIEWER),
        Probe("POST", url, data=data, state=_notification_state(world)),
    ]


def _telemetry_channel_post(name: str) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        from opshero.actors import Actor
        from telemetry import notifications

        made = notifications.create_channel(
            organization=world.a.org,
            actor=Actor.system("tests"),
            kind="webhook",
            name="Tenant a's hook",
            url="https://hooks.example.com/a",
        )
        url = reverse(name, kwargs={"org": world.a.org.slug, "channel_id": made.channel.pk})
        return [Probe("POST", url, data={}, insider_status=302, state=_notification_state(world))]

    return build


def _tenant_a_alert(world: World):
    from django.utils import timezone

    from telemetry.models import Alert, Level, SignalKind
    from tests.factories import make_device

    device = make_device(world.a.org)
    now = timezone.now()
    return Alert.objects.create(
        organization=world.a.org,
        kind=SignalKind.THROTTLING,
        level=Level.DEVICE,
        site=device.site,
        device=device,
        summary="Tenant a's hot gateway",
        first_breach_at=now,
        last_breach_at=now,
    )


def _telemetry_scope_health(name: str) -> Callable[[World], list[Probe]]:
    """Tenant a's site or device health page, read by a viewer."""

    def build(world: World) -> list[Probe]:
        from tests.factories import make_device

        device = make_device(world.a.org)
        kwargs = (
            {"site_id": device.site_id}
            if name == "telemetry:site-health"
            else {"device_id": device.pk}
        )
        url = reverse(name, kwargs={"org": world.a.org.slug, **kwargs})
        return [Probe("GET", url, insider_role=Role.VIEWER)]

    return build


def _telemetry_alert_detail(world: World) -> list[Probe]:
    alert = _tenant_a_alert(world)
    url = reverse("telemetry:alert-detail", kwargs={"org": world.a.org.slug, "alert_id": alert.pk})
    return [Probe("GET", url, insider_role=Role.VIEWER)]


def _telemetry_alert_post(name: str, data: dict) -> Callable[[World], list[Probe]]:
    """Acknowledging or resolving tenant a's alert: an approver's change, a redirect."""

    def build(world: World) -> list[Probe]:
        from telemetry.models import Alert

        alert = _tenant_a_alert(world)
        url = reverse(name, kwargs={"org": world.a.org.slug, "alert_id": alert.pk})

        def state():
            return Alert.objects.filter(pk=alert.pk).values_list(
                "status", "acknowledged_at", "resolved_at", "resolution"
            )[0]

        return [
            Probe(
                "POST",
                url,
                data=data,
                insider_role=Role.APPROVER,
                insider_status=302,
                state=state,
            )
        ]

    return build


def _app_cases() -> dict[str, Callable[[World], list[Probe]]]:
    """Cases kept beside an app's own tests (tests/<app>/isolation_cases.py, CASES)."""
    from importlib import import_module

    cases: dict[str, Callable[[World], list[Probe]]] = {}
    for app in ("fleet", "modelregistry", "roi", "rollouts", "review"):
        try:
            module = import_module(f"tests.{app}.isolation_cases")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.{app}.isolation_cases":
                raise
            continue
        cases.update(module.CASES)
    return cases


CASES: dict[str, Callable[[World], list[Probe]]] = {
    "overview": _org_page("overview"),
    "members": _org_page("members"),
    "member-add": _member_add,
    "approval-policy": _approval_policy,
    "org-currency": _org_currency,
    "member-role": _member_write("member-role", {"role": "planner"}, 200),
    "member-remove": _member_write("member-remove", {}, 302),
    "audit": _org_page("audit", Role.APPROVER),
    "api-org": _org_page("api-org"),
    "api-members": _org_page("api-members"),
    "api-member": _api_member,
    "api-audit-events": _org_page("api-audit-events", Role.APPROVER),
    # fleet pages
    "fleet:devices": _fleet_get("fleet:devices"),
    "fleet:device": _fleet_get("fleet:device", device_id="device"),
    "fleet:device-new": _fleet_get("fleet:device-new", Role.APPROVER),
    "fleet:device-revoke": _fleet_post("fleet:device-revoke", device_id="device"),
    "fleet:device-retire": _fleet_post("fleet:device-retire", device_id="device"),
    "fleet:import": _fleet_get("fleet:import", Role.APPROVER),
    "fleet:export": _fleet_get("fleet:export"),
    "fleet:sites": _fleet_get("fleet:sites"),
    "fleet:site": _fleet_get("fleet:site", site_id="site"),
    "fleet:site-delete": _fleet_post("fleet:site-delete", site_id="empty_site"),
    "fleet:enroll": _fleet_post(
        "fleet:enroll",
        lambda o: {"site": o["site"].pk, "placement": "near_edge", "expires_in_hours": 2},
        status=302,
    ),
    "fleet:groups": _fleet_get("fleet:groups"),
    "fleet:group": _fleet_get("fleet:group", group_id="group"),
    "fleet:group-preview": _fleet_post(
        "fleet:group-preview", lambda o: {"site_ids": [o["site"].pk]}, status=200
    ),
    "fleet:group-delete": _fleet_post("fleet:group-delete", group_id="group"),
    "fleet:site-policy": _operating_policy("fleet:site-policy"),
    "fleet:site-policy-clear": _operating_policy("fleet:site-policy-clear"),
    "fleet:group-policy": _operating_policy("fleet:group-policy"),
    "fleet:group-policy-clear": _operating_policy("fleet:group-policy-clear"),
    "fleet:targets": _fleet_get("fleet:targets"),
    "fleet:target": _fleet_get("fleet:target", target_id="target"),
    "fleet:target-clone": _fleet_post("fleet:target-clone", target_id="target"),
    # fleet API
    "api-sites": _fleet_get("api-sites"),
    "api-site": _fleet_post(
        "api-site",
        {"name": "Renamed"},
        status=200,
        json_body=True,
        method="PATCH",
        site_id="site",
    ),
    "api-devices": _fleet_get("api-devices"),
    "api-devices-import": _fleet_post(
        "api-devices-import", {}, status=422, role=Role.APPROVER, json_body=False
    ),
    "api-devices-export": _fleet_get("api-devices-export"),
    "api-device": _fleet_post(
        "api-device",
        {"name": "renamed"},
        status=200,
        json_body=True,
        method="PATCH",
        device_id="device",
    ),
    "api-device-revoke": _fleet_post(
        "api-device-revoke", {}, status=200, json_body=True, device_id="device"
    ),
    "api-device-retire": _fleet_post(
        "api-device-retire", {}, status=200, json_body=True, device_id="device"
    ),
    "api-groups": _fleet_get("api-groups"),
    "api-group": _fleet_post(
        "api-group",
        {"name": "Renamed group"},
        status=200,
        json_body=True,
        method="PATCH",
        group_id="group",
    ),
    "api-group-devices": _fleet_get("api-group-devices", group_id="group"),
    "api-site-policy": _operating_policy("api-site-policy"),
    "api-group-policy": _operating_policy("api-group-policy"),
    "api-targets": _fleet_get("api-targets"),
    "api-target": _fleet_post(
        "api-target",
        {"notes": "changed"},
        status=200,
        json_body=True,
        method="PATCH",
        target_id="target",
    ),
    "api-target-clone": _fleet_post(
        "api-target-clone", {}, status=201, json_body=True, target_id="target"
    ),
    "api-enrollment-tokens": _fleet_post(
        "api-enrollment-tokens", lambda o: {"site": o["site"].pk}, status=201, json_body=True
    ),
    # telemetry pages
    "telemetry:ingest": _telemetry_ingest,
    "telemetry:notifications": _telemetry_notifications,
    "telemetry:health": _org_page("telemetry:health", Role.VIEWER),
    "telemetry:site-health": _telemetry_scope_health("telemetry:site-health"),
    "telemetry:device-health": _telemetry_scope_health("telemetry:device-health"),
    "telemetry:compare": _org_page("telemetry:compare", Role.VIEWER),
    "telemetry:alerts": _org_page("telemetry:alerts", Role.VIEWER),
    "telemetry:alert-detail": _telemetry_alert_detail,
    "telemetry:alert-acknowledge": _telemetry_alert_post("telemetry:alert-acknowledge", {}),
    "telemetry:alert-resolve": _telemetry_alert_post(
        "telemetry:alert-resolve", {"resolution": "probe"}
    ),
    "telemetry:notification-channel-toggle": _telemetry_channel_post(
        "telemetry:notification-channel-toggle"
    ),
    "telemetry:notification-channel-delete": _telemetry_channel_post(
        "telemetry:notification-channel-delete"
    ),
    "telemetry:notification-channel-test": _telemetry_channel_post(
        "telemetry:notification-channel-test"
    ),
}
CASES.update(_app_cases())
