"""The review data pages end to end over the test client: the ledger and its CSV, the deletion
report, the retention form, the labelled exports and their audited download; role boundaries."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from opshero.models import AuditEvent
from opshero.roles import Role
from review import exports
from review.models import EvidenceDeletionRun, EvidenceSettings, LabelledExport
from telemetry.services import record_data_sent
from tests.factories import make_site

from .builders import json_sample
from .isolation_data import SYSTEM, reviewed_sample

pytestmark = pytest.mark.django_db


def _url(world, name: str, **kwargs) -> str:
    return reverse(f"review:{name}", kwargs={"org": world.a.org.slug, **kwargs})


def test_every_member_sees_what_left_the_sites_as_chart_table_and_csv(client, world):
    site = make_site(world.a.org, "North <dock>")
    today = timezone.now().date()
    record_data_sent(
        organization_id=world.a.org.pk,
        site_id=site.pk,
        kind="events",
        records=12,
        size=2048,
        day=today,
    )
    record_data_sent(
        organization_id=world.a.org.pk,
        site_id=site.pk,
        kind="evidence",
        records=2,
        size=4096,
        day=today,
    )
    client.force_login(world.a.user(Role.VIEWER))
    page = client.get(_url(world, "ledger"), {"days": "7"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-plotly-for="chart-data-sent"' in html
    assert "North &lt;dock&gt;" in html and "North <dock>" not in html
    assert html.count('data-testid="ledger-row"') == 2
    assert "6.0\xa0KB" in html  # the total
    assert "<script>" not in html  # the figure is JSON, drawn by the static script
    figure = html.split('data-plotly-for="chart-data-sent">')[1].split("</script>")[0]
    assert "\\u003Cdock\\u003E" in figure and json.loads(figure)["layout"]["barmode"] == "stack"
    answer = client.get(_url(world, "ledger-export"), {"days": "7", "site": site.pk})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert "attachment" in answer["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[1:] == [
        ["North <dock>", today.isoformat(), "events", "12", "2048", "1"],
        ["North <dock>", today.isoformat(), "evidence", "2", "4096", "1"],
    ]


def test_the_ledger_answers_htmx_with_its_panel_only(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    page = client.get(_url(world, "ledger"), {"days": "90"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.lstrip().startswith('<div id="ledger-panel"') and "<html" not in html


def test_the_deletion_report_lists_runs_newest_first_with_the_schedule(client, world):
    now = timezone.now()
    for hours, cause, samples in ((5, "retention", 3), (1, "unmatched", 1)):
        EvidenceDeletionRun.objects.create(
            organization=world.a.org,
            cause=cause,
            ran_at=now - timedelta(hours=hours),
            samples=samples,
            bytes=samples * 1000,
            oldest_received_at=now - timedelta(days=31),
            newest_received_at=now - timedelta(days=30),
        )
    client.force_login(world.a.user(Role.REVIEWER))
    html = client.get(_url(world, "deletions")).content.decode()
    rows = html.split('data-testid="deletion-run"')[1:]
    assert len(rows) == 2
    assert "No inference event within a day" in rows[0] and "Retention period over" in rows[1]
    assert 'data-testid="retention-days">30 days' in html
    for role in (Role.VIEWER, Role.PLANNER):
        client.force_login(world.a.user(role))
        assert client.get(_url(world, "deletions")).status_code == 403


def test_the_deletion_report_pages(client, world):
    for _ in range(27):
        EvidenceDeletionRun.objects.create(
            organization=world.a.org, cause="retention", samples=1, bytes=1
        )
    client.force_login(world.a.user(Role.ADMIN))
    first = client.get(_url(world, "deletions")).content.decode()
    second = client.get(_url(world, "deletions"), {"page": "2"}).content.decode()
    assert first.count('data-testid="deletion-run"') == 25
    assert second.count('data-testid="deletion-run"') == 2


def test_an_admin_changes_the_retention_and_errors_show_inline(client, world):
    client.force_login(world.a.user(Role.ADMIN))
    url = _url(world, "settings")
    page = client.get(url)
    assert page.status_code == 200 and 'value="30"' in page.content.decode()
    bad = client.post(url, {"retention_days": "10", "clinic_retention_days": "12"})
    assert bad.status_code == 422
    html = bad.content.decode()
    assert "no longer than other sites" in html and 'value="12"' in html  # what was typed stays
    assert not EvidenceSettings.objects.exists()
    out_of_range = client.post(url, {"retention_days": "0", "clinic_retention_days": "x"})
    assert out_of_range.status_code == 422
    done = client.post(url, {"retention_days": "14", "clinic_retention_days": "3"})
    assert done.status_code == 302 and done["Location"] == url
    current = EvidenceSettings.objects.get(organization=world.a.org)
    assert (current.retention_days, current.clinic_retention_days) == (14, 3)
    assert AuditEvent.objects.filter(verb="evidence.settings_changed").count() == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PLANNER, Role.REVIEWER, Role.APPROVER])
def test_only_admins_change_the_retention(client, world, role):
    client.force_login(world.a.user(role))
    url = _url(world, "settings")
    assert client.get(url).status_code == 403
    assert (
        client.post(url, {"retention_days": "1", "clinic_retention_days": "1"}).status_code == 403
    )
    assert not EvidenceSettings.objects.exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PLANNER, Role.REVIEWER])
def test_viewers_planners_and_reviewers_cannot_export(client, world, gateway, version, role):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    client.force_login(world.a.user(role))
    assert client.get(_url(world, "exports")).status_code == 403
    assert client.post(_url(world, "exports"), {}).status_code == 403
    download = _url(world, "export-download", export_id=export.pk)
    assert client.get(download).status_code == 403
    assert LabelledExport.objects.count() == 1
    assert not AuditEvent.objects.filter(verb="evidence.export_downloaded").exists()


def test_another_organisations_export_is_not_found(client, world, gateway, version):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    client.force_login(world.b.user(Role.ADMIN))
    download = _url(world, "export-download", export_id=export.pk)
    assert client.get(download).status_code == 404
    own = reverse(
        "review:export-download", kwargs={"org": world.b.org.slug, "export_id": export.pk}
    )
    assert client.get(own).status_code == 404  # their own organisation: still no such export
    assert not AuditEvent.objects.filter(verb="evidence.export_downloaded").exists()


def test_an_approver_creates_an_export_and_downloads_it_audited(
    client, world, gateway, version, django_capture_on_commit_callbacks
):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    client.force_login(world.a.user(Role.APPROVER))
    page = client.get(_url(world, "exports"))
    assert page.status_code == 200
    assert "1 reviewed sample within retention" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        answer = client.post(_url(world, "exports"), {"sites": [device.site_id]})
    assert answer.status_code == 302
    export = LabelledExport.objects.get()
    assert export.options["site_ids"] == [device.site_id]
    assert export.options["include_device_ids"] is False
    building = client.get(_url(world, "exports")).content.decode()
    assert 'hx-trigger="every 2s"' in building  # polls while it builds
    exports.build_labelled_export(export.pk)
    ready = client.get(_url(world, "exports"), HTTP_HX_REQUEST="true").content.decode()
    assert "every 2s" not in ready and 'data-testid="export-download"' in ready
    response = client.get(_url(world, "export-download", export_id=export.pk))
    assert response.status_code == 200 and response.streaming
    data = b"".join(response.streaming_content)
    export.refresh_from_db()
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[-1] == "manifest.json"
    assert "attachment" in response["Content-Disposition"]
    event = AuditEvent.objects.get(verb="evidence.export_downloaded")
    assert event.target_id == str(export.pk) and event.actor_user == world.a.user(Role.APPROVER)


def test_an_export_with_a_foreign_site_is_refused_inline(client, world):
    foreign = make_site(world.b.org, "Globex ward")
    client.force_login(world.a.user(Role.ADMIN))
    answer = client.post(_url(world, "exports"), {"sites": [foreign.pk], "include_free_text": "on"})
    assert answer.status_code == 422
    assert not LabelledExport.objects.exists()
    html = answer.content.decode()
    free_text = html.split('name="include_free_text"')[0].rsplit("<input", 1)[1]
    assert "checked" in free_text + html.split('name="include_free_text"')[1].split(">")[0]
    assert "Select a valid choice" in html


def test_a_building_or_deleted_export_is_not_downloadable(client, world, gateway, version):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    building = LabelledExport.objects.create(organization=world.a.org, options={})
    client.force_login(world.a.user(Role.ADMIN))
    assert client.get(_url(world, "export-download", export_id=building.pk)).status_code == 404
    ready = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    from review import storage

    storage.delete_object(ready.object_name)
    assert client.get(_url(world, "export-download", export_id=ready.pk)).status_code == 404
    assert not AuditEvent.objects.filter(verb="evidence.export_downloaded").exists()
