"""Browser: a reviewer works through the review queue from the keyboard.

Three waiting cases (a PNG, then two JSON samples): the first is corrected (class key, a reason
by ``r``, Enter), the second confirmed (the predicted class's key, Enter), the third skipped
(``s``). Each time the next case is on the page without a reload. Waits for locators only, and
judges the page's requests with ``PageWatch`` (tests/conftest.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from opshero.models import AuditEvent
from opshero.roles import Role
from review.models import EvidenceSample, Review
from tests.conftest import browser_login, screenshot
from tests.factories import PASSWORD

from .isolation_queue import linked_samples

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _item(page, sample):
    return page.locator(f"#review-item[data-sample='{sample.pk}']")


def test_a_reviewer_corrects_confirms_and_skips_by_keyboard(
    page_factory, live_server, world, gateway, version
):
    device, _ = gateway
    png, first_json, second_json = linked_samples(
        world.a.org, kinds=["png", "json", "json"], device=device, predicted="dent"
    )
    reviewer = world.a.user(Role.REVIEWER)
    org = world.a.org.slug

    def item_url(sample) -> str:
        return reverse("review:item", kwargs={"org": org, "sample_id": sample.pk})

    def content_url(sample) -> str:
        return reverse("review:content", kwargs={"org": org, "sample_id": sample.pk})

    page, watch = page_factory()
    browser_login(page, live_server, reviewer.username, PASSWORD)
    evidence_requests: list[str] = []
    page.on(
        "request",
        lambda request: "/content" in request.url and evidence_requests.append(request.url),
    )
    page.goto(live_server.url + reverse("review:queue", kwargs={"org": org}))
    page.evaluate("() => { window.__sameDocument = 'yes'; }")
    stage = page.get_by_test_id("review-stage")

    current = _item(page, png)
    expect(current).to_be_visible()
    expect(current.get_by_test_id("evidence-image")).to_be_visible()
    expect(current.get_by_test_id("review-prediction")).to_have_text("dent")
    expect(page.get_by_test_id("review-remaining")).to_have_attribute("data-count", "3")
    buttons = current.get_by_test_id("class-button")
    expect(buttons).to_have_count(4)
    expect(buttons.nth(1)).to_contain_text("2")
    expect(buttons.nth(1)).to_contain_text("scratch")

    # ? shows the keys.
    page.keyboard.press("?")
    expect(page.get_by_test_id("review-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("review-help")).to_be_hidden()

    # 1. Correct: r to the reason field, type, Escape out, 2 (scratch), Enter.
    page.keyboard.press("r")
    reason = current.get_by_test_id("review-reason")
    expect(reason).to_be_focused()
    page.keyboard.type("scuff, not a dent")
    page.keyboard.press("Escape")
    expect(reason).not_to_be_focused()
    page.keyboard.press("2")
    expect(buttons.nth(1)).to_have_attribute("aria-pressed", "true")
    # The next case (fragment and evidence) is already loaded, so Enter shows it at once.
    expect(stage).to_have_attribute("data-preloaded", item_url(first_json))
    page.keyboard.press("Enter")

    current = _item(page, first_json)
    expect(current).to_be_visible()
    pretty = current.get_by_test_id("evidence-json")
    expect(pretty).to_contain_text('"note": "<b>not html</b>"')  # as text, pretty-printed
    expect(pretty.locator("b")).to_have_count(0)
    expect(page.get_by_test_id("review-remaining")).to_have_attribute("data-count", "2")
    screenshot(page, "review-queue")

    # 2. Confirm: 1 is the predicted class (dent), then Enter.
    page.keyboard.press("1")
    expect(current.get_by_test_id("class-button").first).to_have_attribute("aria-pressed", "true")
    expect(stage).to_have_attribute("data-preloaded", item_url(second_json))
    page.keyboard.press("Enter")

    current = _item(page, second_json)
    expect(current).to_be_visible()
    expect(current.get_by_test_id("evidence-json")).to_contain_text(
        f'"case": {second_json.sequence}'
    )
    expect(page.get_by_test_id("review-remaining")).to_have_attribute("data-count", "1")

    # 3. Skip: the last case stays in the queue; the end of the lane is shown.
    page.keyboard.press("s")
    expect(page.get_by_test_id("review-done")).to_be_visible()
    expect(_item(page, second_json)).to_have_count(0)

    assert page.evaluate("() => window.__sameDocument") == "yes"  # never reloaded
    # Each case's evidence was fetched once (the preload is what was shown), and audited once.
    assert sorted(evidence_requests) == sorted(
        live_server.url + content_url(s) for s in (png, first_json, second_json)
    )
    assert AuditEvent.objects.filter(verb="evidence.viewed").count() == 3
    reviews = {r.sample_id: r for r in Review.objects.all()}
    assert set(reviews) == {png.pk, first_json.pk}
    corrected, confirmed = reviews[png.pk], reviews[first_json.pk]
    assert (corrected.verdict, corrected.true_class, corrected.reason) == (
        "corrected",
        "scratch",
        "scuff, not a dent",
    )
    assert (confirmed.verdict, confirmed.true_class) == ("confirmed", "dent")
    assert corrected.reviewer == reviewer == confirmed.reviewer
    assert EvidenceSample.objects.get(pk=second_json.pk).status == "linked"
    watch.assert_clean()


def test_a_case_reviewed_meanwhile_comes_back_with_the_message_and_what_was_typed(
    page_factory, live_server, world, gateway, version
):
    from opshero.actors import Actor
    from review import services

    device, _ = gateway
    first, second = linked_samples(world.a.org, kinds=["json", "json"], device=device)
    org = world.a.org.slug
    page, watch = page_factory()
    browser_login(page, live_server, world.a.user(Role.REVIEWER).username, PASSWORD)
    page.goto(live_server.url + reverse("review:queue", kwargs={"org": org}))
    current = _item(page, first)
    expect(current.get_by_test_id("evidence-json")).to_contain_text('"note"')
    expect(page.get_by_test_id("review-stage")).to_have_attribute(
        "data-preloaded", reverse("review:item", kwargs={"org": org, "sample_id": second.pk})
    )
    # Another reviewer gets there first.
    services.submit_review(
        sample=first, actor=Actor.for_user(world.a.user(Role.APPROVER)), true_class="dent"
    )
    page.keyboard.press("r")
    page.keyboard.type("typed before the refusal")
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    page.keyboard.press("Enter")

    back = _item(page, first)
    expect(back.get_by_test_id("review-error")).to_contain_text("already reviewed")
    expect(back.get_by_test_id("review-reason")).to_have_value("typed before the refusal")
    expect(back.get_by_test_id("class-button").nth(2)).to_have_attribute("aria-pressed", "true")
    assert Review.objects.get(sample=first).true_class == "dent"
    # The only complaint is the browser's note of the 409 answer itself.
    assert all("409" in error for error in watch.console_errors), watch.console_errors
    watch.console_errors.clear()
    watch.assert_clean()
