"""The site operating policy: defaults by site kind, revisions and audit, lanes, ETag part,
fixed query counts, the API's tenancy and roles, and the forms on the site and group pages."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fleet import selectors, services
from fleet.audit import FleetVerb
from fleet.models import OperatingPolicy, OperatingPolicyRevision
from opshero.actors import Actor
from opshero.errors import InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from tests.factories import make_device, make_group, make_site

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(world):
    return Actor.for_user(world.a.user(Role.APPROVER))


def _set(org, actor, **kwargs):
    return services.set_operating_policy(organization=org, actor=actor, **kwargs)


# --- defaults -------------------------------------------------------------------------------------


def test_a_clinic_defaults_to_the_strictest_policy():
    clinic, dock = selectors.policy_defaults("clinic"), selectors.policy_defaults("dock")
    assert clinic == {
        "review_threshold": 0.7,
        "evidence_sampling_rate": 0.0,
        "evidence_audit_rate": 0.0,
        "evidence_daily_cap": 0,
        "image_evidence": False,
        "telemetry_interval_s": 60,
        "desired_poll_interval_s": 60,
    }
    assert dock == {
        "review_threshold": 0.6,
        "evidence_sampling_rate": 0.05,
        "evidence_audit_rate": 0.01,
        "evidence_daily_cap": 50,
        "image_evidence": True,
        "telemetry_interval_s": 60,
        "desired_poll_interval_s": 60,
    }
    assert selectors.policy_defaults("hub") == dock
    clinic["evidence_daily_cap"] = 99  # a copy: the defaults themselves stay
    assert selectors.policy_defaults("clinic")["evidence_daily_cap"] == 0


def test_a_device_without_any_policy_gets_its_site_kinds_defaults(world):
    device = make_device(world.a.org, site=make_site(world.a.org, kind="clinic"))
    effective = selectors.effective_policy(device=device)
    assert effective.source == "default"
    assert effective.revision == 0 and effective.policy_id is None
    assert effective.image_evidence is False and effective.evidence_daily_cap == 0
    assert effective.review_threshold == 0.7
    assert "clinic" in effective.source_label


# --- set, update, clear ---------------------------------------------------------------------------


def test_setting_a_site_policy_starts_from_its_kinds_defaults_and_is_audited(world, actor):
    site = make_site(world.a.org, kind="clinic")
    policy = _set(world.a.org, actor, site=site, review_threshold=0.8)
    assert policy.revision == 1
    assert policy.values() == {**selectors.policy_defaults("clinic"), "review_threshold": 0.8}
    assert policy.updated_by == world.a.user(Role.APPROVER)
    revision = OperatingPolicyRevision.objects.get(site=site)
    assert (revision.revision, revision.values, revision.policy_id) == (
        1,
        policy.values(),
        policy.pk,
    )
    event = AuditEvent.objects.get(verb=FleetVerb.OPERATING_POLICY_CREATED)
    assert event.target_id == str(site.pk) and event.target_type == "fleet.site"
    assert event.data["before"]["review_threshold"] == 0.7
    assert event.data["after"]["review_threshold"] == 0.8
    assert event.data["changed"] == ["review_threshold"]


def test_each_change_bumps_the_revision_keeps_history_and_audits_before_and_after(world, actor):
    site = make_site(world.a.org)
    _set(world.a.org, actor, site=site, telemetry_interval_s=30)
    policy = _set(world.a.org, actor, site=site, telemetry_interval_s=120, image_evidence=False)
    assert policy.revision == 2
    assert OperatingPolicy.objects.get(pk=policy.pk).telemetry_interval_s == 120
    assert list(
        OperatingPolicyRevision.objects.filter(site=site).values_list("revision", flat=True)
    ) == [2, 1]
    event = AuditEvent.objects.get(verb=FleetVerb.OPERATING_POLICY_UPDATED)
    assert event.data["before"]["telemetry_interval_s"] == 30
    assert event.data["after"]["telemetry_interval_s"] == 120
    assert event.data["changed"] == ["image_evidence", "telemetry_interval_s"]
    assert event.data["revision"] == 2
    # Saving the same values again is no change: no revision, no event.
    again = _set(world.a.org, actor, site=site, telemetry_interval_s=120)
    assert again.revision == 2
    assert OperatingPolicyRevision.objects.filter(site=site).count() == 2
    assert AuditEvent.objects.filter(verb=FleetVerb.OPERATING_POLICY_UPDATED).count() == 1


def test_clearing_a_site_policy_reverts_to_defaults_and_revisions_keep_rising(world, actor):
    site = make_site(world.a.org)
    device = make_device(world.a.org, site=site)
    policy = _set(world.a.org, actor, site=site, review_threshold=0.9)
    services.clear_operating_policy(policy=policy, actor=actor)
    assert not OperatingPolicy.objects.filter(site=site).exists()
    assert selectors.effective_policy(device=device).source == "default"
    cleared = OperatingPolicyRevision.objects.filter(site=site).first()
    assert (cleared.revision, cleared.cleared) == (2, True)
    assert cleared.values == selectors.policy_defaults("dock")
    event = AuditEvent.objects.get(verb=FleetVerb.OPERATING_POLICY_CLEARED)
    assert event.data["before"]["review_threshold"] == 0.9
    # A new policy continues the numbering: a device never sees the revision go back.
    assert _set(world.a.org, actor, site=site, review_threshold=0.5).revision == 3


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"review_threshold": 1.5}, "review_threshold"),
        ({"review_threshold": -0.1}, "review_threshold"),
        ({"evidence_sampling_rate": 2}, "evidence_sampling_rate"),
        ({"evidence_daily_cap": -1}, "evidence_daily_cap"),
        ({"evidence_daily_cap": 2.5}, "evidence_daily_cap"),
        ({"telemetry_interval_s": 5}, "telemetry_interval_s"),
        ({"telemetry_interval_s": 3601}, "telemetry_interval_s"),
        ({"desired_poll_interval_s": 10}, "desired_poll_interval_s"),
        ({"image_evidence": "yes"}, "image_evidence"),
        ({"review_threshold": "high"}, "review_threshold"),
        ({"review_threshold": float("nan")}, "review_threshold"),
        ({"confidence": 0.5}, "confidence"),
    ],
)
def test_values_out_of_range_are_refused_naming_the_field(world, actor, values, bad):
    site = make_site(world.a.org)
    with pytest.raises(InvalidInput) as err:
        _set(world.a.org, actor, site=site, **values)
    assert list(err.value.fields) == [bad]
    assert bad in err.value.message
    assert not OperatingPolicy.objects.exists()
    assert not AuditEvent.objects.filter(verb__startswith="operating_policy.").exists()


def test_every_bad_field_is_named_at_once(world, actor):
    with pytest.raises(InvalidInput) as err:
        _set(
            world.a.org,
            actor,
            site=make_site(world.a.org),
            review_threshold=2,
            telemetry_interval_s=1,
        )
    assert set(err.value.fields) == {"review_threshold", "telemetry_interval_s"}


def test_a_policy_is_for_exactly_one_site_or_group(world, actor):
    site, group = make_site(world.a.org), make_group(world.a.org)
    for scope in ({}, {"site": site, "group": group}):
        with pytest.raises(InvalidInput) as err:
            _set(world.a.org, actor, **scope)
        assert "scope" in err.value.fields
    with pytest.raises(InvalidInput):
        _set(world.a.org, actor, site=make_site(world.b.org))


# --- lanes ----------------------------------------------------------------------------------------


def test_a_group_override_wins_over_the_site_policy(world, actor):
    org = world.a.org
    site = make_site(org)
    lane_device = make_device(org, site=site, tags=["lane-1"])
    other = make_device(org, site=site)
    _set(org, actor, site=site, review_threshold=0.5)
    group = make_group(org, "Lane 1", {"tags": ["lane-1"]})
    _set(org, actor, group=group, review_threshold=0.9, telemetry_interval_s=15)
    lane = selectors.effective_policy(device=lane_device)
    assert (lane.source, lane.review_threshold, lane.telemetry_interval_s) == ("group", 0.9, 15)
    assert "Lane 1" in lane.source_label
    assert selectors.effective_policy(device=other).source == "site"
    assert selectors.effective_policy(device=other).review_threshold == 0.5
    # A static member is in the lane too; a retired device never is.
    group.static_members.add(other)
    assert selectors.effective_policy(device=other).source == "group"
    lane_device.status = "retired"
    assert selectors.effective_policy(device=lane_device).source == "site"


def test_the_group_with_the_lowest_id_wins(world, actor):
    org = world.a.org
    device = make_device(org, tags=["a"])
    first = make_group(org, "First", {"tags": ["a"]})
    second = make_group(org, "Second", {"placements": [device.placement]})
    _set(org, actor, group=second, review_threshold=0.2)
    assert selectors.effective_policy(device=device).review_threshold == 0.2
    _set(org, actor, group=first, review_threshold=0.3)
    assert first.pk < second.pk
    assert selectors.effective_policy(device=device).review_threshold == 0.3
    assert [g.pk for g in selectors.groups_of_device(device)] == [first.pk, second.pk]
    services.clear_operating_policy(policy=first.operating_policy, actor=actor)
    assert selectors.effective_policy(device=device).review_threshold == 0.2


def test_groups_of_device_follows_every_rule_kind(world):
    org = world.a.org
    site = make_site(org, kind="clinic")
    device = make_device(org, site=site, tags=["Cold"], placement="on_device")
    matching = [
        make_group(org, rules={"site_ids": [site.pk]}),
        make_group(org, rules={"site_kinds": ["clinic"], "tags": ["cold"]}),
        make_group(org, rules={"placements": ["on_device", "cloud"]}),
    ]
    make_group(org, rules={"site_kinds": ["clinic"], "placements": ["cloud"]})  # AND fails
    make_group(org, rules={})  # nobody
    make_group(world.b.org, rules={"placements": ["on_device"]})  # another organisation
    found = [g.pk for g in selectors.groups_of_device(device)]
    assert found == [g.pk for g in matching]
    for group in selectors.groups_for_org(org=org):  # the same answer as members_of
        assert (group.pk in found) == selectors.members_of(group).filter(pk=device.pk).exists()


# --- the ETag part --------------------------------------------------------------------------------


def test_etag_part_changes_with_a_value_or_the_source_and_not_otherwise(world, actor):
    org = world.a.org
    site = make_site(org)
    device = make_device(org, site=site)
    default = selectors.effective_policy(device=device).etag_part
    assert selectors.effective_policy(device=device).etag_part == default
    # A site policy with the defaults' values is still another source.
    _set(org, actor, site=site, review_threshold=0.6)
    as_site = selectors.effective_policy(device=device).etag_part
    assert as_site != default
    _set(org, actor, site=site, review_threshold=0.6)  # no change
    assert selectors.effective_policy(device=device).etag_part == as_site
    make_site(org)  # unrelated rows do not matter
    make_group(org, rules={"tags": ["elsewhere"]})
    assert selectors.effective_policy(device=device).etag_part == as_site
    _set(org, actor, site=site, evidence_daily_cap=10)
    changed = selectors.effective_policy(device=device).etag_part
    assert changed != as_site and len(changed) == 16
    _set(org, actor, site=site, evidence_daily_cap=50)  # back to the same values
    assert selectors.effective_policy(device=device).etag_part == as_site


# --- many devices ---------------------------------------------------------------------------------


def _queries(fn) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return len(ctx.captured_queries), result


def test_effective_policies_runs_a_fixed_number_of_queries(world, actor):
    org = world.a.org
    lane = make_group(org, "Lane", {"tags": ["lane"]})
    _set(org, actor, group=lane, review_threshold=0.95)
    make_group(org, "Static lane")
    devices = []
    for i in range(20):
        site = make_site(org, kind="clinic" if i % 3 == 0 else "dock")
        if i % 4 == 0:
            _set(org, actor, site=site, telemetry_interval_s=30 + i)
        devices.append(make_device(org, site=site, tags=["lane"] if i % 5 == 0 else []))
    _set(org, actor, group=selectors.group_for_org(org=org, pk=lane.pk + 1), review_threshold=0.1)
    selectors.group_for_org(org=org, pk=lane.pk + 1).static_members.add(devices[1])

    one, _ = _queries(lambda: selectors.effective_policies(devices=devices[:1]))
    many, found = _queries(lambda: selectors.effective_policies(devices=devices))
    assert one == many <= 3
    assert found[devices[0].pk].source == "group"  # tag "lane"
    assert found[devices[1].pk].review_threshold == 0.1  # static member
    assert found[devices[4].pk].telemetry_interval_s == 34  # site policy
    assert found[devices[3].pk].source == "default" and found[devices[3].pk].image_evidence is False
    assert found[devices[2].pk].source == "default" and found[devices[2].pk].image_evidence is True
    for device in devices:  # the batch answers what one device alone is told
        assert found[device.pk] == selectors.effective_policy(device=device)


# --- API ------------------------------------------------------------------------------------------


def _site_policy_url(org, site) -> str:
    return reverse("api-site-policy", kwargs={"org": org.slug, "site_id": site.pk})


def _group_policy_url(org, group) -> str:
    return reverse("api-group-policy", kwargs={"org": org.slug, "group_id": group.pk})


def test_api_reads_and_sets_a_site_policy(world, api_as):
    site = make_site(world.a.org, kind="clinic")
    api = api_as(world.a.user(Role.APPROVER))
    got = api.get(_site_policy_url(world.a.org, site))
    assert got.status_code == 200
    body = got.json()
    assert (body["source"], body["revision"], body["values"]["image_evidence"]) == (
        "default",
        0,
        False,
    )
    put = api.put(
        _site_policy_url(world.a.org, site),
        {"review_threshold": 0.75, "telemetry_interval_s": 120},
        format="json",
    )
    assert put.status_code == 200, put.content
    body = put.json()
    assert body["source"] == "site" and body["revision"] == 1
    assert body["values"]["review_threshold"] == 0.75
    assert body["values"]["evidence_daily_cap"] == 0  # the clinic's default stays
    assert body["updated_by"] == world.a.user(Role.APPROVER).username
    assert [r["revision"] for r in body["revisions"]] == [1]


def test_api_refuses_bad_values_with_the_project_error_shape(world, api_as):
    site = make_site(world.a.org)
    api = api_as(world.a.user(Role.ADMIN))
    url = _site_policy_url(world.a.org, site)
    out_of_range = api.put(url, {"telemetry_interval_s": 1}, format="json")
    assert out_of_range.status_code == 422
    error = out_of_range.json()["error"]
    assert error["code"] == "invalid_input" and list(error["fields"]) == ["telemetry_interval_s"]
    wrong_type = api.put(url, {"image_evidence": "maybe"}, format="json")
    assert wrong_type.status_code == 400
    assert "image_evidence" in wrong_type.json()["error"]["fields"]
    unknown = api.put(url, {"threshold": 0.5}, format="json")
    assert unknown.status_code == 400
    assert "threshold" in unknown.json()["error"]["fields"]
    assert not OperatingPolicy.objects.exists()


def test_api_group_override_put_and_delete(world, api_as):
    group = make_group(world.a.org, rules={"tags": ["x"]})
    api = api_as(world.a.user(Role.ADMIN))
    url = _group_policy_url(world.a.org, group)
    assert api.get(url).json()["values"] is None
    assert api.delete(url).status_code == 404  # nothing to remove
    put = api.put(url, {"evidence_sampling_rate": 0.5}, format="json")
    assert put.status_code == 200
    assert put.json()["source"] == "group" and put.json()["values"]["evidence_sampling_rate"] == 0.5
    assert api.delete(url).status_code == 204
    after = api.get(url).json()
    assert after["source"] == "none" and after["revisions"][0]["cleared"] is True
    assert after["revisions"][0]["values"] is None


def test_api_other_organisations_objects_are_404_and_a_viewer_cannot_put(world, api_as):
    site, group = make_site(world.a.org), make_group(world.a.org)
    outsider = api_as(world.b.user(Role.ADMIN))
    for url in (_site_policy_url(world.b.org, site), _group_policy_url(world.b.org, group)):
        for method in ("get", "put"):
            response = getattr(outsider, method)(url, {"review_threshold": 0.5}, format="json")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
    viewer = api_as(world.a.user(Role.VIEWER))
    assert viewer.get(_site_policy_url(world.a.org, site)).status_code == 200
    refused = viewer.put(
        _site_policy_url(world.a.org, site), {"review_threshold": 0.5}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert viewer.delete(_group_policy_url(world.a.org, group)).status_code == 403
    assert not OperatingPolicy.objects.exists()


def test_the_schema_describes_the_policy_endpoints(world, api_as):
    response = api_as(world.a.user(Role.VIEWER)).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    site_path = next(p for p in paths if p.endswith("/sites/{site_id}/policy/"))
    assert {"get", "put"} <= set(paths[site_path])
    group_path = next(p for p in paths if p.endswith("/groups/{group_id}/policy/"))
    assert {"get", "put", "delete"} <= set(paths[group_path])


# --- HTML -----------------------------------------------------------------------------------------


def test_site_page_shows_the_policy_and_saves_the_form(world, client):
    site = make_site(world.a.org, kind="clinic")
    client.force_login(world.a.user(Role.APPROVER))
    page = client.get(reverse("fleet:site", kwargs={"org": "acme", "site_id": site.pk}))
    html = page.content.decode()
    assert "Operating policy" in html and "Defaults for a clinic" in html
    assert 'data-testid="site-policy-form"' in html
    url = reverse("fleet:site-policy", kwargs={"org": "acme", "site_id": site.pk})
    form = {
        "review_threshold": "0.8",
        "evidence_sampling_rate": "0",
        "evidence_audit_rate": "0",
        "evidence_daily_cap": "0",
        "telemetry_interval_s": "90",
        "desired_poll_interval_s": "60",
    }
    saved = client.post(url, form)
    assert saved.status_code == 302
    policy = OperatingPolicy.objects.get(site=site)
    assert (policy.review_threshold, policy.telemetry_interval_s, policy.image_evidence) == (
        0.8,
        90,
        False,
    )
    html = client.get(saved["Location"]).content.decode()
    assert "Site policy" in html and "rev 1" in html and 'data-testid="policy-history"' in html


def test_site_policy_form_shows_service_errors_inline_and_keeps_the_input(world, client):
    site = make_site(world.a.org)
    client.force_login(world.a.user(Role.ADMIN))
    url = reverse("fleet:site-policy", kwargs={"org": "acme", "site_id": site.pk})
    response = client.post(
        url,
        {
            "review_threshold": "1.7",
            "evidence_sampling_rate": "0.1",
            "evidence_audit_rate": "0",
            "evidence_daily_cap": "7",
            "telemetry_interval_s": "4",
            "desired_poll_interval_s": "60",
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "1.7 is out of range" in html and "4 is out of range" in html
    assert 'value="1.7"' in html and 'value="7"' in html  # what was typed is kept
    assert html.count("is-invalid") >= 2
    assert not OperatingPolicy.objects.exists()


def test_a_viewer_sees_the_policy_without_a_form_and_cannot_post(world, client):
    site = make_site(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(reverse("fleet:site", kwargs={"org": "acme", "site_id": site.pk})).content
    assert b"Standard defaults" in html and b"site-policy-form" not in html
    url = reverse("fleet:site-policy", kwargs={"org": "acme", "site_id": site.pk})
    assert client.post(url, {"review_threshold": "0.5"}).status_code == 403


def test_group_page_saves_and_removes_an_override(world, client):
    org = world.a.org
    group = make_group(org, "Night lane", {"tags": ["night"]})
    device = make_device(org, tags=["night"])
    client.force_login(world.a.user(Role.ADMIN))
    url = reverse("fleet:group-policy", kwargs={"org": "acme", "group_id": group.pk})
    form = {
        "review_threshold": "0.5",
        "evidence_sampling_rate": "0.2",
        "evidence_audit_rate": "0",
        "evidence_daily_cap": "5",
        "image_evidence": "on",
        "telemetry_interval_s": "30",
        "desired_poll_interval_s": "30",
    }
    assert client.post(url, form).status_code == 302
    detail = client.get(reverse("fleet:device", kwargs={"org": "acme", "device_id": device.pk}))
    assert "Operating policy: Lane override · Night lane rev 1" in detail.content.decode()
    group_page = client.get(reverse("fleet:group", kwargs={"org": "acme", "group_id": group.pk}))
    assert "Remove override" in group_page.content.decode()
    bad = client.post(url, {**form, "desired_poll_interval_s": "1"})
    assert bad.status_code == 422 and "1 is out of range" in bad.content.decode()
    clear = reverse("fleet:group-policy-clear", kwargs={"org": "acme", "group_id": group.pk})
    assert client.post(clear).status_code == 302
    assert not OperatingPolicy.objects.filter(group=group).exists()
    detail = client.get(reverse("fleet:device", kwargs={"org": "acme", "device_id": device.pk}))
    assert "Operating policy: Standard defaults" in detail.content.decode()


# --- images leave a clinic only when an admin says so -------------------------------------------


def test_only_an_admin_lets_images_leave_a_clinic(world):
    from opshero.errors import Forbidden

    clinic = make_site(world.a.org, kind="clinic")
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    with pytest.raises(Forbidden) as refused:
        services.set_operating_policy(
            organization=world.a.org, actor=approver, site=clinic, image_evidence=True
        )
    assert refused.value.code == "clinic_images_admin_only"
    assert not OperatingPolicy.objects.filter(site=clinic).exists()
    # The approver may still change everything else at the clinic, images kept on site.
    services.set_operating_policy(
        organization=world.a.org, actor=approver, site=clinic, evidence_daily_cap=5
    )
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    policy = services.set_operating_policy(
        organization=world.a.org, actor=admin, site=clinic, image_evidence=True
    )
    assert policy.image_evidence is True
    # Once allowed, an approver's other changes do not trip the rule again.
    services.set_operating_policy(
        organization=world.a.org, actor=approver, site=clinic, evidence_daily_cap=6
    )


def test_a_lane_never_decides_what_evidence_leaves_a_clinic(world):
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    clinic = make_site(world.a.org, kind="clinic")
    dock = make_site(world.a.org, kind="dock")
    at_clinic = make_device(world.a.org, site=clinic, tags=["imaging"])
    at_dock = make_device(world.a.org, site=dock, tags=["imaging"])
    lane = make_group(world.a.org, rules={"tags": ["imaging"]})
    services.set_operating_policy(
        organization=world.a.org,
        actor=approver,
        group=lane,
        image_evidence=True,
        evidence_daily_cap=80,
        telemetry_interval_s=30,
    )
    clinic_policy = selectors.effective_policy(device=at_clinic)
    dock_policy = selectors.effective_policy(device=at_dock)
    assert (dock_policy.image_evidence, dock_policy.evidence_daily_cap) == (True, 80)
    # The lane's other settings apply at the clinic; its evidence settings do not.
    assert clinic_policy.telemetry_interval_s == 30 and clinic_policy.source == "group"
    assert (clinic_policy.image_evidence, clinic_policy.evidence_daily_cap) == (False, 0)
    assert clinic_policy.evidence_sampling_rate == 0.0
    assert clinic_policy.etag_part != dock_policy.etag_part


def test_a_dock_that_becomes_a_clinic_keeps_its_images_on_site(world):
    approver = Actor.for_user(world.a.user(Role.APPROVER))
    site = make_site(world.a.org, kind="dock")
    device = make_device(world.a.org, site=site)
    services.set_operating_policy(
        organization=world.a.org, actor=approver, site=site, image_evidence=True
    )
    assert selectors.effective_policy(device=device).image_evidence is True
    site.kind = "clinic"
    site.save()
    assert selectors.effective_policy(device=device).image_evidence is False
    # An admin's say-so is what lets them out.
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    services.set_operating_policy(
        organization=world.a.org, actor=admin, site=site, image_evidence=True
    )
    assert selectors.effective_policy(device=device).image_evidence is True
    services.set_operating_policy(
        organization=world.a.org, actor=admin, site=site, image_evidence=False
    )
    services.set_operating_policy(
        organization=world.a.org, actor=approver, site=site, evidence_daily_cap=3
    )
    assert selectors.effective_policy(device=device).image_evidence is False
