"""The field accuracy page: who sees it, what it shows, and where each figure comes from."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from fleet.models import HardwareTarget
from modelregistry.models import ValidationRun
from opshero.roles import Role
from telemetry import rollups

from .test_field_source import audit_cases, low_cases, make_reviews

pytestmark = pytest.mark.django_db


def _url(world, **params) -> str:
    base = reverse("review:accuracy", kwargs={"org": world.a.org.slug})
    return base + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _lab_run(version, *, accuracy=0.93, ece=0.041):
    return ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.get(builtin_key="cpu"),
        number=1,
        status="passed",
        report={
            "passed": True,
            "steps": [
                {
                    "name": "calibration",
                    "status": "passed",
                    "data": {"accuracy": accuracy, "ece": ece},
                }
            ],
        },
        report_digest=uuid.uuid4().hex * 2,
        finished_at=version.created_at,
    )


def _figure(html: str, figure_id: str) -> dict:
    match = re.search(
        rf'<script type="application/json" data-plotly-for="{figure_id}">(.*?)</script>', html, re.S
    )
    assert match, f"no figure {figure_id}"
    return json.loads(match.group(1))


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PLANNER, Role.REVIEWER, Role.ADMIN])
def test_every_member_may_read_the_figures(client, world, role):
    client.force_login(world.a.user(role))
    response = client.get(_url(world))
    assert response.status_code == 200
    assert b"No reviews and no inferences" in response.content


def test_a_stranger_is_sent_to_log_in(client, world):
    response = client.get(_url(world))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_page_sets_field_and_lab_figures_side_by_side(client, world, gateway, version):
    _lab_run(version)
    make_reviews(client, gateway, low_cases(1, 3) + audit_cases(5, 1), feedback=("up", "down"))
    rollups.roll_up_marked()
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(_url(world))
    assert response.status_code == 200
    html = response.content.decode()
    for label in (
        "field: reviews",
        "field: operator thumbs",
        "field: estimated",
        "lab: validation run",
    ):
        assert label in html, label
    row = re.search(r'<tr data-scope="[^"]+".*?</tr>', html, re.S).group(0)
    assert "North dock" in row and "parcel-damage v3" in row
    assert "60.0 %" in row and "n = 10" in row  # 6 of 10 reviews right
    assert "too few reviews to judge" in row
    assert "50.0 %" in row  # thumbs: 1 up, 1 down
    assert "93.0 %" in row and "run #1 on" in row and "0.041" in row  # lab
    # The strata apart: low-confidence 1 of 4, audit 5 of 6.
    assert re.search(r'data-stratum="low_confidence">.*?25\.0 %', html, re.S)
    assert re.search(r'data-stratum="audit">.*?83\.3 %', html, re.S)
    assert "P(low)" in html  # the stratified estimate is explained
    confusion = _figure(html, "accuracy-confusion")
    labels = confusion["data"][0]["x"]
    assert labels == ["dent", "scratch", "crush", "ok"]
    z = confusion["data"][0]["z"]
    assert z[labels.index("scratch")][labels.index("dent")] == 3
    assert z[labels.index("dent")][labels.index("dent")] == 6
    reliability = _figure(html, "accuracy-reliability")
    assert sum(1 for y in reliability["data"][0]["y"] if y is not None) == 2  # bins 6 and 13
    over_time = _figure(html, "accuracy-over-time")
    names = [trace["name"] for trace in over_time["data"]]
    assert "lab: validation run" in names and "field: reviews (95 % interval)" in names
    # No inline script: only JSON blocks and scripts with a src.
    for tag in re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html):
        raise AssertionError(f"inline script {tag}")


def test_htmx_gets_the_panel_only(client, world, gateway, version):
    make_reviews(client, gateway, audit_cases(2, 0))
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(_url(world, days=7), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="accuracy-panel"') and "<html" not in html
    assert "100.0 %" in html


def test_filters_narrow_the_table_and_bad_values_fall_back(client, world, gateway, version, dock):
    make_reviews(client, gateway, audit_cases(2, 0))
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(_url(world, site=dock.pk + 1000)).content.decode()
    assert "No reviews and no inferences" in html
    html = client.get(_url(world, site=dock.pk, version=version.pk, days="abc")).content.decode()
    assert "North dock" in html and 'value="30" selected' in html
    assert html.count(f'<option value="{version.pk}" selected>parcel-damage v3</option>') == 1
