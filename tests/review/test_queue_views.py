"""The review queue pages: who may see evidence, what a case shows, confirm and correct, the
evidence bytes (audited, hardened), and the refusals (deleted, already reviewed, bad class)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from opshero.models import AuditEvent
from opshero.roles import Role
from review import services
from review.models import EvidenceSample, Review
from tests.factories import make_site

from .builders import open_evidence_policy, png_bytes
from .isolation_queue import linked_samples

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def cases(world, gateway, version):
    """Three waiting cases at the dock, oldest first: a PNG and two JSON samples."""
    device, _ = gateway
    return [
        *linked_samples(world.a.org, kinds=["png"], device=device),
        *linked_samples(world.a.org, kinds=["json", "json"], device=device),
    ]


def _urls(org, sample) -> dict[str, str]:
    ids = {"org": org.slug, "sample_id": sample.pk}
    return {
        "queue": reverse("review:queue", kwargs={"org": org.slug}),
        "item": reverse("review:item", kwargs=ids),
        "content": reverse("review:content", kwargs=ids),
        "submit": reverse("review:submit", kwargs=ids),
    }


# --- who may see evidence --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPROVER, Role.ADMIN])
def test_reviewers_approvers_and_admins_see_the_queue_and_its_evidence(client, world, cases, role):
    client.force_login(world.a.user(role))
    urls = _urls(world.a.org, cases[0])
    for name in ("queue", "item", "content"):
        assert client.get(urls[name]).status_code == 200, name
    response = client.post(urls["submit"], {"true_class": "dent"})
    assert response.status_code == 302
    assert Review.objects.get(sample=cases[0]).reviewer == world.a.user(role)


@pytest.mark.parametrize("role", [Role.PLANNER, Role.VIEWER])
def test_planners_and_viewers_never_see_evidence(client, world, cases, role):
    client.force_login(world.a.user(role))
    urls = _urls(world.a.org, cases[0])
    events = AuditEvent.objects.count()
    for name in ("queue", "item", "content"):
        assert client.get(urls[name]).status_code == 403, name
    assert client.post(urls["submit"], {"true_class": "dent"}).status_code == 403
    assert not Review.objects.exists()
    assert AuditEvent.objects.count() == events  # no evidence.viewed either


def test_another_organisations_case_is_a_404_everywhere(client, world, cases):
    client.force_login(world.b.user(Role.ADMIN))
    events = AuditEvent.objects.count()
    # Through tenant a's address (not a member: 404) and through b's own (no such sample: 404).
    for org in (world.a.org, world.b.org):
        urls = _urls(org, cases[0])
        for name in ("item", "content"):
            assert client.get(urls[name]).status_code == 404, (org.slug, name)
        assert client.post(urls["submit"], {"true_class": "dent"}).status_code == 404
    assert client.get(_urls(world.a.org, cases[0])["queue"]).status_code == 404
    assert not Review.objects.exists()
    assert AuditEvent.objects.count() == events
    # b's own queue does not list a's cases.
    response = client.get(_urls(world.b.org, cases[0])["queue"])
    assert response.status_code == 200
    assert response.context["lanes"] == [] and "sample" not in response.context


# --- what the queue shows ----------------------------------------------------------------------


def test_the_queue_shows_the_oldest_case_with_its_figures_and_one_key_per_class(
    client, world, dock, cases
):
    from fleet.selectors import effective_site_policy

    client.force_login(world.a.user(Role.REVIEWER))
    response = client.get(_urls(world.a.org, cases[0])["queue"])
    assert response.status_code == 200
    context = response.context
    assert context["sample"] == cases[0]
    assert [e["lane"].waiting for e in context["lanes"]] == [3]
    assert context["remaining"] == 3
    buttons = [(b["key"], b["name"], b["predicted"]) for b in context["class_buttons"]]
    assert buttons == [
        ("1", "dent", True),
        ("2", "scratch", False),
        ("3", "crush", False),
        ("4", "ok", False),
    ]
    html = response.content.decode()
    threshold = effective_site_policy(site=dock).review_threshold
    assert f"{threshold:.2f}" in html
    assert 'data-testid="review-prediction"><strong>dent</strong>' in html
    assert "0.410" in html and "low confidence" in html
    assert 'data-testid="evidence-image"' in html
    assert context["content_url"] in html
    assert "Assistive, not a decision" not in html  # a dock, not a clinic
    # The next case is named for the script to preload.
    assert f'data-next-url="{_urls(world.a.org, cases[1])["item"]}"' in html


def test_a_json_case_is_fetched_as_text_never_rendered(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    response = client.get(_urls(world.a.org, cases[1])["item"], **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the fragment only
    assert 'data-evidence-json data-src="' in html
    assert "not html" not in html  # the sample's bytes are never in the page
    assert 'data-testid="evidence-image"' not in html


def test_a_clinic_case_carries_the_assistive_label(client, world, version):
    clinic = make_site(world.a.org, name="Riverside clinic", kind="clinic")
    open_evidence_policy(clinic, image_evidence=False)  # JSON only: a clinic's default
    sample = linked_samples(world.a.org, kinds=["json"], site=clinic)[0]
    client.force_login(world.a.user(Role.REVIEWER))
    response = client.get(_urls(world.a.org, sample)["item"])
    assert "Assistive, not a decision" in response.content.decode()


def test_lanes_are_chosen_by_site_and_version_and_filtered_by_reason(client, world, cases, version):
    other = linked_samples(world.a.org, kinds=["json"], reason="audit")[0]
    client.force_login(world.a.user(Role.REVIEWER))
    url = _urls(world.a.org, cases[0])["queue"]
    lanes = client.get(url).context["lanes"]
    assert [(e["lane"].site_id, e["lane"].waiting) for e in lanes] == [
        (cases[0].site_id, 3),
        (other.site_id, 1),
    ]
    chosen = client.get(url, {"site": other.site_id, "version": version.pk})
    assert chosen.context["sample"] == other and chosen.context["remaining"] == 1
    audits = client.get(url, {"reason": "audit"}).context
    assert [e["lane"].site_id for e in audits["lanes"]] == [other.site_id]
    assert audits["sample"] == other


# --- confirm and correct -------------------------------------------------------------------------


def test_confirming_answers_with_the_next_case_and_the_counts_out_of_band(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    urls = _urls(world.a.org, cases[0])
    response = client.post(urls["submit"], {"true_class": "dent", "reason": ""}, **HX)
    assert response.status_code == 200
    review = Review.objects.get(sample=cases[0])
    assert (review.verdict, review.true_class, review.predicted_class) == ("confirmed",) + (
        "dent",
    ) * 2
    assert EvidenceSample.objects.get(pk=cases[0].pk).status == "reviewed"
    html = response.content.decode()
    assert f'data-sample="{cases[1].pk}"' in html  # the next case
    assert f'data-next-url="{_urls(world.a.org, cases[2])["item"]}"' in html
    assert 'id="review-remaining"' in html and 'hx-swap-oob="true"' in html
    assert 'data-count="2"' in html


def test_correcting_without_javascript_redirects_to_the_next_case(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    response = client.post(
        _urls(world.a.org, cases[0])["submit"], {"true_class": "scratch", "reason": " a scuff "}
    )
    assert response.status_code == 302
    assert response["Location"] == _urls(world.a.org, cases[1])["item"]
    review = Review.objects.get(sample=cases[0])
    assert (review.verdict, review.true_class, review.reason) == ("corrected", "scratch", "a scuff")
    assert review.confidence == pytest.approx(0.41)
    page = client.get(response["Location"])
    assert page.context["sample"] == cases[1] and page.context["remaining"] == 2
    assert "Corrected: dent → scratch" in page.content.decode()


def test_the_last_case_answers_with_the_end_of_the_lane(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    response = client.post(_urls(world.a.org, cases[2])["submit"], {"true_class": "ok"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="review-done"' in html
    assert 'data-count="2"' in html  # the two skipped ones still wait
    plain = client.post(_urls(world.a.org, cases[1])["submit"], {"true_class": "ok"})
    assert plain["Location"].startswith(_urls(world.a.org, cases[1])["queue"])


# --- refusals ------------------------------------------------------------------------------------


def test_a_class_the_model_does_not_have_is_422_and_nothing_is_stored(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    events = AuditEvent.objects.count()
    response = client.post(
        _urls(world.a.org, cases[0])["submit"],
        {"true_class": "banana", "reason": "my typed reason"},
        **HX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Not a class of this model" in html
    assert "my typed reason" in html  # kept
    assert f'data-sample="{cases[0].pk}"' in html
    assert not Review.objects.exists()
    assert EvidenceSample.objects.get(pk=cases[0].pk).status == "linked"
    assert AuditEvent.objects.count() == events
    empty = client.post(_urls(world.a.org, cases[0])["submit"], {"true_class": ""})
    assert empty.status_code == 422 and not Review.objects.exists()


def test_a_second_review_of_the_same_case_is_409(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    url = _urls(world.a.org, cases[0])["submit"]
    assert client.post(url, {"true_class": "dent"}).status_code == 302
    again = client.post(url, {"true_class": "crush", "reason": "second look"}, **HX)
    assert again.status_code == 409
    html = again.content.decode()
    assert "already reviewed" in html and "second look" in html
    assert Review.objects.get().true_class == "dent"


def test_deleted_evidence_cannot_be_reviewed_nor_viewed(client, world, cases):
    services.apply_evidence_retention(now=timezone.now() + timedelta(days=3650))
    assert EvidenceSample.objects.get(pk=cases[0].pk).status == "deleted"
    client.force_login(world.a.user(Role.REVIEWER))
    urls = _urls(world.a.org, cases[0])
    events = AuditEvent.objects.count()
    response = client.post(urls["submit"], {"true_class": "dent", "reason": "late"}, **HX)
    assert response.status_code == 404
    html = response.content.decode()
    assert "deleted" in html and "late" in html
    assert not Review.objects.exists()
    content = client.get(urls["content"])
    assert content.status_code == 404
    assert content["Content-Type"].startswith("text/plain")
    assert content["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.count() == events  # nothing was read
    # The queue no longer offers it.
    assert client.get(urls["queue"]).context["lanes"] == []


# --- the evidence bytes --------------------------------------------------------------------------


def _audits(sample, verb):
    return AuditEvent.objects.filter(verb=verb, target_type="evidence", target_id=str(sample.pk))


def test_content_is_the_decrypted_image_audited_and_hardened(client, world, cases):
    reviewer = world.a.user(Role.REVIEWER)
    client.force_login(reviewer)
    url = _urls(world.a.org, cases[0])["content"]
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("default-src 'none'; img-src 'self'")
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"].startswith("inline;")
    viewed = _audits(cases[0], "evidence.viewed").get()
    assert (viewed.actor_user, viewed.data["bytes"]) == (reviewer, len(png_bytes()))
    assert not _audits(cases[0], "evidence.downloaded").exists()

    download = client.get(url, {"download": "1"})
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="evidence-{cases[0].pk}.png"'
    assert _audits(cases[0], "evidence.downloaded").count() == 1
    assert _audits(cases[0], "evidence.viewed").count() == 1


def test_json_content_is_served_as_json(client, world, cases):
    import json

    client.force_login(world.a.user(Role.REVIEWER))
    response = client.get(_urls(world.a.org, cases[1])["content"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert json.loads(response.content)["note"] == "<b>not html</b>"
    assert _audits(cases[1], "evidence.viewed").count() == 1


def test_tampered_evidence_is_refused_with_409(client, world, cases):
    from review import storage

    sample = cases[0]
    path = storage.open_path(sample.object_name)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    client.force_login(world.a.user(Role.REVIEWER))
    response = client.get(_urls(world.a.org, sample)["content"])
    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/plain")
    assert not _audits(sample, "evidence.viewed").exists()


def test_a_reviewed_or_deleted_case_opened_by_its_address_says_so(client, world, cases):
    client.force_login(world.a.user(Role.REVIEWER))
    urls = _urls(world.a.org, cases[0])
    assert client.post(urls["submit"], {"true_class": "crush"}).status_code == 302
    page = client.get(urls["item"])
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="review-done-note"' in html
    assert "Corrected as <strong>crush</strong>" in html
    assert 'data-testid="review-form"' not in html  # nothing left to submit
    services.apply_evidence_retention(now=timezone.now() + timedelta(days=3650))
    gone = client.get(_urls(world.a.org, cases[1])["item"]).content.decode()
    assert 'data-testid="evidence-gone"' in gone and 'data-testid="review-form"' not in gone


def test_a_case_of_an_unregistered_model_takes_a_typed_class(client, world, cases):
    from protocol import telemetry as telemetry_wire

    unknown = telemetry_wire.ModelRef(name="forklift-eye", version="0.9", sha256="b" * 64)
    sample = linked_samples(world.a.org, kinds=["json"], model=unknown, predicted="pallet")[0]
    assert sample.model_version is None
    client.force_login(world.a.user(Role.REVIEWER))
    queue = client.get(
        _urls(world.a.org, sample)["queue"], {"site": sample.site_id, "version": "none"}
    )
    assert queue.context["sample"] == sample
    assert queue.context["lane"].model_label == "a model not in the registry"
    assert queue.context["class_buttons"] == []
    assert 'id="review-true-class"' in queue.content.decode()
    response = client.post(_urls(world.a.org, sample)["submit"], {"true_class": "crate"})
    assert response.status_code == 302
    assert Review.objects.get(sample=sample).verdict == "corrected"


def test_single_character_classes_are_typed_as_they_are_named():
    from review.views.queue import class_keys

    assert class_keys([str(n) for n in range(10)]) == [str(n) for n in range(10)]
    assert class_keys(["A", "b", "c"]) == ["a", "b", "c"]
    # Names that are not one distinct key each, or that take the queue's own keys: in order.
    assert class_keys(["dent", "scratch", "crush", "ok"]) == ["1", "2", "3", "4"]
    assert class_keys(["a", "r"]) == ["1", "2"]  # r is the reason key
    assert class_keys(["a", "A"]) == ["1", "2"]
    assert class_keys([]) == []
