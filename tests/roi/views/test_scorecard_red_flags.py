"""The red-flag cap on the scorecard ranking is saved with the scorecard and can be turned off."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import Scorecard
from tests.roi.builders import scorecard_data

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
# Offline and performance are all that matter: the handheld (red flags) outscores the API.
WEIGHTS = {
    **{
        f"w.{cat}": "0"
        for cat in (
            "model_compatibility",
            "quantization",
            "power_thermal",
            "update_strategy",
            "observability",
            "security",
        )
    },
    "w.offline": "5",
    "w.performance": "5",
}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def ranked(body: str) -> list[str]:
    return re.findall(r'data-testid="rank-\d">([^<]+)<', body)


def test_turning_the_cap_off_ranks_on_score_alone_and_is_saved(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    capped = client.post(url("scorecard-preview"), scorecard_data(**WEIGHTS), **HX)
    assert ranked(capped.content.decode())[-1] == "Handheld NPU only"
    data = scorecard_data(**WEIGHTS)
    del data["red_flags_rank_last"]  # the checkbox unticked posts nothing
    body = client.post(url("scorecard-preview"), data, **HX).content.decode()
    assert ranked(body) == ["Jetson Orin gateway", "Handheld NPU only", "Cloud vision API"]
    response = client.post(url("scorecard-new"), data)
    assert response.status_code == 302
    card = Scorecard.objects.get(organization=world.a.org)
    assert card.red_flags_rank_last is False
    page = client.get(url("scorecard", scorecard_id=card.pk)).content.decode()
    assert not re.search(r'data-testid="red-flags-rank-last" checked', page)
    # Ticking it again is saved too.
    client.post(
        url("scorecard", scorecard_id=card.pk),
        {**scorecard_data(**WEIGHTS), "revision": str(card.revision)},
    )
    card.refresh_from_db()
    assert card.red_flags_rank_last is True


def test_the_api_reads_and_writes_the_cap(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    from tests.roi.builders import candidates

    created = client.post(
        "/api/v1/orgs/acme/scorecards/",
        {"name": "API stacks", "candidates": candidates(), "red_flags_rank_last": False},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["red_flags_rank_last"] is False
    card = Scorecard.objects.get(name="API stacks")
    assert card.red_flags_rank_last is False
