"""Issue 18: every hx-swap-oob fragment the scorecard editor sends has its target on the page
(htmx logs ``htmx:oobErrorNoTarget`` in the console otherwise)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from tests.roi.builders import make_scorecard, scorecard_data

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def ids(html: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', html))


def oob_ids(html: str) -> set[str]:
    return {
        match.group(1)
        for tag in re.findall(r"<[a-z]+[^>]*hx-swap-oob[^>]*>", html)
        if (match := re.search(r'\sid="([^"]+)"', tag))
    }


@pytest.mark.parametrize("page", ["new", "saved"])
def test_every_oob_fragment_of_the_live_preview_has_a_target(client, world, page):
    client.force_login(world.a.user(Role.PLANNER))
    if page == "new":
        full = client.get(url("scorecard-new")).content.decode()
        data = scorecard_data(count="2")
    else:
        scorecard = make_scorecard(world.a.org)
        full = client.get(url("scorecard", scorecard_id=scorecard.pk)).content.decode()
        data = scorecard_data()
    preview = client.post(url("scorecard-preview"), data, **HX).content.decode()
    sent = oob_ids(preview)
    assert "scorecard-results" in ids(preview)
    assert {"err-weights", "err-c0-hardware", "err-c1-toolchain"} <= sent
    missing = sent - ids(full)
    assert not missing, sorted(missing)


def test_preview_after_adding_a_candidate_targets_only_what_the_new_matrix_has(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    added = client.post(url("scorecard-preview"), {**scorecard_data(), "op": "add"}, **HX)
    matrix = added.content.decode()
    count = int(re.search(r'name="count" value="(\d+)"', matrix).group(1))
    preview = client.post(
        url("scorecard-preview"), scorecard_data(count=str(count)), **HX
    ).content.decode()
    page_ids = ids(matrix) | {"scorecard-results", "err-name"}
    assert not oob_ids(preview) - page_ids
