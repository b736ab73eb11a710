"""A plan's start date: the form that moves it, and the page flow (once the route exists)."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import NoReverseMatch, reverse

from opshero.roles import Role
from roi.forms.plans import PlanStartForm
from tests.roi.builders import make_plan


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "Give the day the plan starts."),
        ("2026-02-30", "Enter a real date as YYYY-MM-DD, for example 2026-03-02."),
        ("02/03/2026", "Enter a real date as YYYY-MM-DD, for example 2026-03-02."),
        ("next monday", "Enter a real date as YYYY-MM-DD, for example 2026-03-02."),
        ("9999-12-31", "Choose a date between 1 Jan 2000 and 31 Dec 2100."),
        ("1999-12-31", "Choose a date between 1 Jan 2000 and 31 Dec 2100."),
    ],
)
def test_a_bad_start_date_is_refused_with_a_clear_error(raw, error):
    form = PlanStartForm({"start_date": raw})
    assert not form.is_valid()
    assert form.errors["start_date"] == [error]


def test_a_start_date_is_read_as_iso_and_shown_back_as_typed():
    form = PlanStartForm({"start_date": "2026-03-02"})
    assert form.is_valid()
    assert form.cleaned_data["start_date"] == date(2026, 3, 2)
    bad = PlanStartForm({"start_date": "2026-02-30"})
    assert not bad.is_valid()
    assert 'value="2026-02-30"' in str(bad["start_date"])  # nothing typed is lost
    shown = PlanStartForm(initial={"start_date": date(2026, 3, 2)})
    assert 'type="date"' in str(shown["start_date"])
    assert 'value="2026-03-02"' in str(shown["start_date"])


def _start_url(plan) -> str:
    try:
        return reverse("roi:plan-start", kwargs={"org": "acme", "plan_id": plan.pk})
    except NoReverseMatch:
        pytest.fail("roi/urls.py has no 'plan-start' route yet (see the plan board's report)")


@pytest.mark.django_db
def test_a_planner_moves_the_start_and_the_dates_follow(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(_start_url(plan), {"start_date": "2026-03-02"})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.start_date == date(2026, 3, 2)
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="phase-dates-days_1_15">2 Mar \u2013 16 Mar 2026<' in page


@pytest.mark.django_db
def test_a_bad_start_date_shows_the_page_with_the_error_and_keeps_the_date(client, world):
    plan = make_plan(world.a.org)
    before = plan.start_date
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(_start_url(plan), {"start_date": "2026-02-30"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "Enter a real date as YYYY-MM-DD" in body
    assert 'value="2026-02-30"' in body
    plan.refresh_from_db()
    assert plan.start_date == before


@pytest.mark.django_db
def test_a_viewer_cannot_move_the_start(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    assert client.post(_start_url(plan), {"start_date": "2026-03-02"}).status_code in {403, 404}


@pytest.mark.django_db
def test_the_start_form_is_offered_only_where_it_can_be_posted(client, world):
    plan = make_plan(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(
        reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk})
    ).content.decode()
    try:
        reverse("roi:plan-start", kwargs={"org": "acme", "plan_id": plan.pk})
    except NoReverseMatch:
        assert 'data-testid="start-form"' not in body
    else:
        assert 'data-testid="start-form"' in body
    client.force_login(world.a.user(Role.VIEWER))
    viewer = client.get(
        reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk})
    ).content.decode()
    assert 'data-testid="start-form"' not in viewer


@pytest.mark.django_db
def test_plans_made_before_start_dates_existed_start_on_their_creation_day(world):
    from datetime import UTC, datetime
    from importlib import import_module

    from django.apps import apps

    from roi.models import Plan

    migration = import_module("roi.migrations.0004_plan_start_date")
    plan = make_plan(world.a.org)
    created = datetime(2025, 1, 5, 9, 30, tzinfo=UTC)
    Plan.objects.filter(pk=plan.pk).update(created_at=created, start_date=date(2026, 1, 1))
    migration.start_on_creation_day(apps, None)
    plan.refresh_from_db()
    assert plan.start_date == date(2025, 1, 5)
