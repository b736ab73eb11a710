"""The decision wizard pages: HTMX steps, answers kept across navigation and errors, saving."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import Assessment
from tests.roi.builders import make_assessment

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}

STEPS = [
    ("workflow", {"workflow": "logistics_dock_vision"}),
    ("latency", {"latency_tolerance_ms": "150"}),
    ("offline", {"offline_percent": "2", "longest_outage": "4"}),
    ("privacy", {"privacy_risk": "medium"}),
    ("change", {"model_changes_per_year": "4"}),
    (
        "fleet",
        {
            "sites": "3",
            "devices_per_site": "6",
            "payload_kb": "400",
            "inferences_per_device_per_minute": "2",
            "model_complexity": "medium",
            "existing_hardware": ["phones_tablets", "jetson_class"],
        },
    ),
]


def step_url(org: str, step: str) -> str:
    return reverse("roi:wizard-step", kwargs={"org": org, "step": step})


def answer_all(client, org: str = "acme") -> None:
    for step, data in STEPS:
        response = client.post(step_url(org, step), {**data, "go": "next"})
        assert response.status_code == 302, (step, response.content[:500])


def test_wizard_resumes_at_the_first_unanswered_step(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.get(reverse("roi:wizard", kwargs={"org": "acme"}))
    assert response.url == step_url("acme", "workflow")
    client.post(step_url("acme", "workflow"), {"workflow": "custom", "go": "next"})
    response = client.get(reverse("roi:wizard", kwargs={"org": "acme"}))
    assert response.url == step_url("acme", "latency")


def test_htmx_step_answers_with_the_next_step_fragment_and_pushes_its_url(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        step_url("acme", "workflow"), {"workflow": "logistics_dock_vision", "go": "next"}, **HX
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == step_url("acme", "latency")
    body = response.content.decode()
    assert "<html" not in body  # a fragment, not the page
    assert 'data-step="latency"' in body
    assert "How much latency can the workflow tolerate?" in body
    assert "Logistics: dock vision" in body  # the answer shows in "answers so far"


def test_bad_answer_keeps_what_was_typed_and_says_why(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        step_url("acme", "latency"), {"latency_tolerance_ms": "-5", "go": "next"}, **HX
    )
    assert response.status_code == 200  # the fragment shows the step again (see invalid_status)
    assert "HX-Push-Url" not in response
    body = response.content.decode()
    assert 'data-step="latency"' in body
    assert 'value="-5"' in body
    assert "Must be at least 1." in body  # the pure rules' range
    response = client.post(step_url("acme", "offline"), {"offline_percent": "140", "go": "next"})
    assert response.status_code == 422
    assert 'value="140"' in response.content.decode()
    assert "less than or equal to 100" in response.content.decode()


def test_leaving_a_step_with_an_error_keeps_the_draft_for_later(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        step_url("acme", "latency"), {"latency_tolerance_ms": "fast", "go": "workflow"}
    )
    assert response.url == step_url("acme", "workflow")
    page = client.get(step_url("acme", "latency")).content.decode()
    assert 'value="fast"' in page
    assert "Enter a number." in page
    # Fixing it clears the draft and stores the answer.
    client.post(step_url("acme", "latency"), {"latency_tolerance_ms": "180", "go": "next"})
    page = client.get(step_url("acme", "latency")).content.decode()
    assert 'value="180"' in page
    assert "Enter a number." not in page


def test_back_and_a_full_reload_show_the_answers_so_far(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    client.post(step_url("acme", "workflow"), {"workflow": "field_service_triage", "go": "next"})
    client.post(step_url("acme", "latency"), {"latency_tolerance_ms": "120", "go": "next"})
    response = client.post(
        step_url("acme", "offline"),
        {"offline_percent": "15", "longest_outage": "6", "go": "latency"},
    )
    assert response.url == step_url("acme", "latency")  # back saved the valid offline answer
    page = client.get(step_url("acme", "offline")).content.decode()
    assert 'value="15"' in page and 'value="6"' in page
    page = client.get(step_url("acme", "latency")).content.decode()
    assert 'value="120"' in page
    assert "Field service: triage" in page  # the side panel
    assert "15 % of the time; longest 6 h" in page


def test_result_step_lists_what_is_missing(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    client.post(step_url("acme", "workflow"), {"workflow": "custom", "go": "next"})
    page = client.get(step_url("acme", "result")).content.decode()
    assert "A few answers are still missing" in page
    assert "How much latency can the workflow tolerate?" in page
    assert 'data-testid="save-assessment"' not in page


def test_full_run_shows_the_decision_and_saves_a_shareable_assessment(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    answer_all(client)
    page = client.get(step_url("acme", "result")).content.decode()
    assert "Primary inference runs on a near-edge gateway at the site" in page
    assert "Tight latency keeps inference local" in page  # a rule in plain words
    assert "latency tolerance 150 ms &lt; 200 ms" in page  # ...with today's values
    assert "Logistics: computer vision at the dock" in page  # reference architecture
    assert "What would change this answer" in page
    response = client.post(step_url("acme", "result"), {"name": "Rotterdam docks"})
    assessment = Assessment.objects.get()
    assert response.url == reverse(
        "roi:assessment", kwargs={"org": "acme", "assessment_id": assessment.pk}
    )
    assert assessment.name == "Rotterdam docks"
    assert assessment.answers["existing_hardware"] == ["phones_tablets", "jetson_class"]
    assert assessment.answers["offline_share"] == 0.02
    # The wizard starts afresh after saving.
    assert "Nothing answered yet" in client.get(step_url("acme", "workflow")).content.decode()
    # Every member can open the saved result.
    client.force_login(world.a.user(Role.VIEWER))
    page = client.get(response.url).content.decode()
    assert "Rotterdam docks" in page
    assert 'data-testid="share-url"' in page


def test_viewer_may_explore_but_not_save(client, world):
    client.force_login(world.a.user(Role.VIEWER))
    answer_all(client)
    page = client.get(step_url("acme", "result")).content.decode()
    assert "saving an assessment needs the planner or admin role" in page
    assert client.post(step_url("acme", "result"), {"name": "x"}).status_code == 403
    assert Assessment.objects.count() == 0


def test_revise_answers_starts_from_a_saved_assessment(client, world):
    assessment = make_assessment(world.a.org, latency_tolerance_ms=90)
    client.force_login(world.a.user(Role.PLANNER))
    response = client.get(reverse("roi:wizard", kwargs={"org": "acme"}) + f"?from={assessment.pk}")
    assert response.url == step_url("acme", "workflow")
    page = client.get(step_url("acme", "latency")).content.decode()
    assert 'value="90"' in page
    assert "Starting from “Dock assessment”" in page


def test_revise_answers_of_another_organisation_is_404(client, world):
    foreign = make_assessment(world.b.org)
    client.force_login(world.a.user(Role.PLANNER))
    url = reverse("roi:wizard", kwargs={"org": "acme"}) + f"?from={foreign.pk}"
    assert client.get(url).status_code == 404


def test_unknown_step_is_404(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    assert client.get(step_url("acme", "teleport")).status_code == 404


def test_reset_forgets_the_answers(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    client.post(step_url("acme", "workflow"), {"workflow": "custom", "go": "next"})
    client.post(reverse("roi:wizard-reset", kwargs={"org": "acme"}))
    page = client.get(step_url("acme", "workflow")).content.decode()
    assert "Nothing answered yet" in page


def test_going_back_from_an_unanswered_step_is_not_an_error(client, world):
    """Back then Next must not greet the user with "required" on a step they never filled."""
    from django.urls import reverse

    client.force_login(world.a.user("planner"))
    step = reverse("roi:wizard-step", kwargs={"org": "acme", "step": "privacy"})
    response = client.post(step, {"go": "offline"})  # leave privacy unanswered, going back
    assert response.status_code == 302
    html = client.get(step).content.decode()
    assert "This field is required." not in html
    assert "is-invalid" not in html
