"""The stack scorecard editor: live ranking, red flags, radar, add/remove, save, conflicts."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import Scorecard
from tests.roi.builders import make_scorecard, scorecard_data

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def test_new_scorecard_offers_two_empty_candidates(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scorecard-new")).content.decode()
    assert '<input type="hidden" name="count" value="2">' in body
    assert 'name="c1.update_strategy.score"' in body
    assert 'name="c2.name"' not in body
    assert "Complete the scores to rank the stacks" in body


def test_preview_ranks_flags_and_draws_the_radar(client, world):
    client.force_login(world.a.user(Role.VIEWER))
    response = client.post(url("scorecard-preview"), scorecard_data(), **HX)
    assert response.status_code == 200
    body = response.content.decode()
    ranked = re.findall(r'data-testid="rank-\d">([^<]+)<', body)
    assert ranked == ["Jetson Orin gateway", "Cloud vision API", "Handheld NPU only"]
    # The handheld scores 2 on update strategy and observability: two red flags.
    assert body.count('data-testid="red-flag"') == 2
    assert "Update strategy scored 2/5. You will not be able to support this in the field." in body
    radar = json.loads(
        re.search(r'data-plotly-for="chart-radar">(.*?)</script>', body, re.S).group(1)
    )
    assert [trace["type"] for trace in radar["data"]] == ["scatterpolar"] * 3
    assert radar["data"][0]["r"][0] == radar["data"][0]["r"][-1]  # the polygon is closed


def test_weights_change_the_ranking_but_a_red_flag_still_ranks_last(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    # Make offline and performance all that matters: the cloud API scores below the handheld,
    # but the handheld's red flags keep it below every flag-free stack, and the page says why.
    weights = {
        f"w.{cat}": "0"
        for cat in (
            "model_compatibility",
            "quantization",
            "power_thermal",
            "update_strategy",
            "observability",
            "security",
        )
    }
    data = scorecard_data(**weights, **{"w.offline": "5", "w.performance": "5"})
    body = client.post(url("scorecard-preview"), data, **HX).content.decode()
    ranked = re.findall(r'data-testid="rank-\d">([^<]+)<', body)
    assert ranked == ["Jetson Orin gateway", "Cloud vision API", "Handheld NPU only"]
    scores = [int(s) for s in re.findall(r'data-testid="score-\d">(\d+)<', body)]
    assert scores[1] < scores[2]  # the weights did move the cloud API below on score
    note = re.search(r'data-testid="rank-note-3">(.*?)</div>', body, re.S).group(1)
    assert "Ranked below Cloud vision API despite a higher score" in note
    assert 'data-testid="rank-note-2"' not in body


def test_missing_score_is_reported_next_to_its_cell(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = scorecard_data(**{"c1.security.score": "", "c1.security.evidence": "ask vendor"})
    response = client.post(url("scorecard-preview"), data, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        '<div id="err-c1-security-score" class="field-errors" hx-swap-oob="true">'
        "<div>Score this category (1-5).</div></div>" in body
    )
    assert "Handheld NPU only · Security posture: Score this category (1-5)." in body


def test_add_and_remove_candidates_rerender_the_matrix_with_what_was_typed(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = scorecard_data(**{"c0.performance.evidence": "typed note", "op": "add"})
    body = client.post(url("scorecard-preview"), data, **HX).content.decode()
    assert '<input type="hidden" name="count" value="4">' in body
    assert ">typed note</textarea>" in body
    assert 'id="scorecard-results" hx-swap-oob="true"' in body
    data = scorecard_data(op="remove-0")
    body = client.post(url("scorecard-preview"), data, **HX).content.decode()
    assert '<input type="hidden" name="count" value="2">' in body
    assert 'value="Jetson Orin gateway"' not in body
    assert 'name="c0.name" value="Handheld NPU only"' in body


def test_save_new_then_edit_and_conflict(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(url("scorecard-new"), scorecard_data(name="Dock stacks"))
    scorecard = Scorecard.objects.get()
    assert response.url == url("scorecard", scorecard_id=scorecard.pk)
    assert scorecard.candidates[0]["scores"]["performance"]["evidence"].startswith("P95 38 ms")
    edit = scorecard_data(name="Dock stacks v2", revision="1", **{"c2.offline.score": "3"})
    assert client.post(url("scorecard", scorecard_id=scorecard.pk), edit).status_code == 302
    scorecard.refresh_from_db()
    assert scorecard.revision == 2
    assert scorecard.candidates[2]["scores"]["offline"]["score"] == 3
    stale = scorecard_data(name="Other edit", revision="1")
    response = client.post(url("scorecard", scorecard_id=scorecard.pk), stale)
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert 'value="Other edit"' in response.content.decode()


def test_saving_an_incomplete_scorecard_keeps_the_typing(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = scorecard_data(**{"c0.name": "", "c2.quantization.evidence": "vendor says fine"})
    response = client.post(url("scorecard-new"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert "Give the stack a name." in body
    assert ">vendor says fine</textarea>" in body
    assert Scorecard.objects.count() == 0


def test_viewer_reads_but_cannot_save(client, world):
    scorecard = make_scorecard(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    body = client.get(url("scorecard", scorecard_id=scorecard.pk)).content.decode()
    assert 'data-testid="save-scorecard"' not in body
    assert "Jetson Orin gateway" in body
    assert (
        client.post(url("scorecard", scorecard_id=scorecard.pk), scorecard_data()).status_code
        == 403
    )
    assert client.post(url("scorecard-new"), scorecard_data()).status_code == 403
    assert client.post(url("scorecard-delete", scorecard_id=scorecard.pk)).status_code == 403
    assert Scorecard.objects.count() == 1
