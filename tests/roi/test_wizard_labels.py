"""Issue 18: the wizard's result and the saved assessment speak plainly: no raw keys, the rules'
version only behind "details", overridden rules shown as overridden."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import Assessment
from roi.rules import RULESET_VERSION
from tests.roi.builders import make_assessment
from tests.roi.views.test_wizard import STEPS, step_url

pytestmark = pytest.mark.django_db

RAW = (
    "near_edge",
    "on_device",
    "phones_tablets",
    "jetson_class",
    "(one of",
    "latency_tolerance_ms",
)


def visible(body: str) -> str:
    """What a person reads: no folded <details>, scripts, attributes or tags."""
    body = re.sub(r"<details.*?</details>|<script.*?</script>", "", body, flags=re.S)
    body = re.sub(r'\s[\w:-]+="[^"]*"', "", body)
    return re.sub(r"<[^>]+>", " ", body)


def assessment_page(client, world, assessment) -> str:
    client.force_login(world.a.user(Role.VIEWER))
    url = reverse("roi:assessment", kwargs={"org": "acme", "assessment_id": assessment.pk})
    return client.get(url).content.decode()


def test_assessment_page_has_no_raw_keys_and_keeps_the_ruleset_behind_details(client, world):
    body = assessment_page(client, world, make_assessment(world.a.org, privacy_risk="medium"))
    text = visible(body)
    for raw in RAW:
        assert raw not in text, raw
    assert "ruleset" not in text.lower()
    assert re.search(
        r"<details[^>]*><summary>details</summary>.*?" + re.escape(RULESET_VERSION), body, re.S
    )
    assert "moderate" in text  # the privacy answer in words
    assert "phones or tablets" in text


def test_an_assessment_under_older_rules_says_so_in_words(client, world):
    assessment = make_assessment(world.a.org)
    Assessment.objects.filter(pk=assessment.pk).update(ruleset_version="2025.9")
    assessment.refresh_from_db()
    body = assessment_page(client, world, assessment)
    assert 'data-testid="older-rules"' in body
    assert "2025.9" not in visible(body)
    assert "2025.9" in body  # behind details


def test_overridden_rules_are_shown_as_overridden_not_as_reasons(client, world):
    assessment = make_assessment(
        world.a.org,
        workflow="custom",
        latency_tolerance_ms=1000,
        offline_share=0,
        longest_outage_hours=0,
        privacy_risk="high",
        phi_involved=False,
        model_changes_per_year=12,
    )
    body = assessment_page(client, world, assessment)
    overridden = re.findall(r'data-testid="overridden-finding">(.*?)</div>\s*</div>', body, re.S)
    change = [item for item in overridden if "Frequent model changes favour the cloud" in item]
    assert len(change) == 1
    assert "Overridden by" in change[0] and "High privacy risk" in change[0]
    reasons = re.findall(r'data-testid="finding">.*?fw-medium">([^<]+)<', body, re.S)
    assert "Frequent model changes favour the cloud" not in reasons
    assert "High privacy risk keeps raw data local" in reasons


def test_wizard_result_has_no_raw_keys(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    for step, data in STEPS:
        assert client.post(step_url("acme", step), {**data, "go": "next"}).status_code == 302
    body = client.get(step_url("acme", "result")).content.decode()
    text = visible(body)
    assert "Recommended placement" in text
    for raw in RAW:
        assert raw not in text, raw
    assert "ruleset" not in text.lower()
    assert "Jetson-class boxes" in text  # the answers panel names hardware in words
