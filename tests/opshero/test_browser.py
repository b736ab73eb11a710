"""Headless Chromium: every demo role signs in and opens every page it can reach.

No console error, no request to any host but the test server, no needed request lost (judged
by ``PageWatch`` in tests/conftest.py), a screenshot per page in test-artifacts/ (laptop and
tablet sizes). Every step waits for what it checks, so the tests hold on a busy machine.
"""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from opshero.demo import DEMO_PASSWORD
from opshero.models import Membership
from tests.conftest import browser_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1440, "height": 900}
TABLET = {"width": 820, "height": 1180}
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# Swagger UI and Redoc parse the whole schema in the browser: on a busy machine that alone can
# take longer than the usual wait.
DOCS_RENDER_TIMEOUT_MS = 60_000


def seed_demo():
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.parametrize(
    "username", ["demo-viewer", "demo-planner", "demo-reviewer", "demo-approver", "demo-admin"]
)
def test_each_demo_role_opens_every_page_cleanly(username, page_factory, live_server):
    seed_demo()
    page, watch = page_factory(LAPTOP)
    browser_login(page, live_server, username, DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")
    expect(page.locator("[data-testid=org-name]")).to_have_text("Northwind Logistics")

    hrefs = page.locator("aside .nav-link[href]").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert hrefs, "the sidebar has no links"
    role = Membership.objects.get(user__username=username, organization__slug="northwind").role
    assert ("/o/northwind/audit/" in hrefs) == (role in {"approver", "admin"})
    # Evidence is for those who judge it: never planners or viewers.
    assert ("/o/northwind/review/" in hrefs) == (role in {"reviewer", "approver", "admin"})
    for href in hrefs:
        response = page.goto(live_server.url + href)
        assert response.status == 200, href
        # The page that answered is the one its sidebar entry marks as current.
        expect(page.locator(f"aside .nav-link[href='{href}']")).to_have_attribute(
            "aria-current", "page"
        )
        expect(page.locator("h2.page-title")).not_to_be_empty()
        page.wait_for_load_state("networkidle")
        screenshot(page, f"{username}-{href.strip('/').replace('/', '_')}")
    response = page.goto(f"{live_server.url}/o/northwind/members/")
    assert response.status == 200
    expect(page.locator("h2.page-title")).to_have_text("Members")
    page.wait_for_load_state("networkidle")
    screenshot(page, f"{username}-o_northwind_members")
    watch.assert_clean()


def test_overview_on_a_tablet_and_the_audit_filter_over_htmx(page_factory, live_server):
    seed_demo()
    page, watch = page_factory(TABLET)
    browser_login(page, live_server, "demo-admin", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")
    screenshot(page, "tablet-overview")
    # On a tablet the sidebar collapses behind a toggle that still works.
    toggler = page.locator("aside .navbar-toggler")
    expect(toggler).to_be_visible()
    audit_link = page.locator("#sidebar-menu a[href='/o/northwind/audit/']")
    expect(audit_link).to_be_hidden()
    toggler.click()
    expect(audit_link).to_be_visible()
    # Wait for the menu's opening transition to end (Bootstrap swaps "collapsing" for
    # "collapse show"): a click while it still slides can land beside the link on a busy machine.
    expect(page.locator("#sidebar-menu")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))
    expect(page.locator("#sidebar-menu.collapsing")).to_have_count(0)
    with page.expect_navigation():
        audit_link.click()
    expect(page).to_have_url(f"{live_server.url}/o/northwind/audit/")
    rows = page.locator("[data-testid=audit-table] tbody tr")
    expect(rows.nth(4)).to_be_visible()
    with page.expect_response(re.compile(r"/o/northwind/audit/\?.*verb=organization\.created")):
        page.select_option("#audit-verb", "organization.created")
    # The other demo organisation's creation is not shown here; one row remains.
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Northwind Logistics")
    expect(page).to_have_url(re.compile(r"verb=organization\.created"))  # in the address bar
    screenshot(page, "tablet-audit-filtered")
    watch.assert_clean()


def test_api_docs_render_offline(page_factory, live_server):
    seed_demo()
    page, watch = page_factory(LAPTOP)
    browser_login(page, live_server, "demo-viewer", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "OpsHero API", timeout=DOCS_RENDER_TIMEOUT_MS
    )
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-docs", full_page=False)  # the full page is very long

    # Redoc's bundle hard-codes its vendor logo from cdn.redoc.ly; the content security
    # policy must block it before it is sent (the browser reports that on the console).
    watch.allow_blocked(REDOC_LOGO)
    page.goto(f"{live_server.url}/api/redoc/")
    expect(page.locator("redoc .menu-content")).to_be_visible(timeout=DOCS_RENDER_TIMEOUT_MS)
    expect(page.locator("redoc h1").first).to_contain_text("OpsHero API")
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-redoc", full_page=False)
    watch.assert_clean()


def test_wrong_login_shows_a_generic_error(page_factory, live_server):
    seed_demo()
    page, watch = page_factory(LAPTOP)
    browser_login(page, live_server, "demo-admin", "wrong-password")
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.locator("[data-testid=login-error]")).to_contain_text(
        "Please enter a correct username and password"
    )
    expect(page.locator("#id_username")).to_have_value("demo-admin")
    screenshot(page, "login-error")
    watch.assert_clean()


# --- the request judging every browser test relies on -------------------------------------------


def _probe(page, live_server, body: str) -> str:
    """Serve ``body`` as an HTML page at a test-server URL (the assets it names are real)."""
    url = f"{live_server.url}/__probe__/"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=body))
    return url


def test_page_watch_passes_a_clean_page_and_ignores_unneeded_cancelled_requests(
    page_factory, live_server
):
    page, watch = page_factory(LAPTOP)
    icon = re.compile(r"/static/opshero/img/logo\.svg\?held$")
    page.route(icon, lambda route: None)  # never answered: still pending when the page is left
    url = _probe(
        page,
        live_server,
        '<link rel="stylesheet" href="/static/opshero/css/app.css">'
        '<link rel="icon" href="/static/opshero/img/logo.svg?held">'
        '<p id="ready">ready</p>',
    )
    with page.expect_request(icon):
        page.goto(url)
    expect(page.locator("#ready")).to_have_text("ready")
    page.goto(f"{live_server.url}/login/")  # leaving cancels the pending favicon
    expect(page.locator("#id_username")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert watch.harmless_cancels() == [f"other {live_server.url}/static/opshero/img/logo.svg?held"]
    assert watch.problems() == {}
    watch.assert_clean()


def test_page_watch_fails_on_missing_assets_other_hosts_and_lost_needed_requests(
    page_factory, live_server
):
    page, watch = page_factory(LAPTOP)
    page.route("https://cdn.example.com/**", lambda route: route.abort())  # nothing leaves
    page.route("**/static/refused.js", lambda route: route.abort("connectionrefused"))
    page.route("**/__broken__/", lambda route: route.fulfill(status=500, body="boom"))
    held = re.compile(r"/static/held\.js$")
    page.route(held, lambda route: None)
    # Allowed only if the content security policy blocks it; this page has no policy.
    watch.allow_blocked("https://cdn.example.com/vendor-logo.svg")
    url = _probe(
        page,
        live_server,
        '<link rel="stylesheet" href="/static/opshero/css/missing.css">'
        '<img src="https://cdn.example.com/logo.png" alt="">'
        '<img src="https://cdn.example.com/vendor-logo.svg" alt="">'
        '<script src="/static/refused.js"></script>'
        '<p id="ready">ready</p><script async src="/static/held.js"></script>',
    )
    with page.expect_request(held):
        page.goto(url, wait_until="domcontentloaded")
    expect(page.locator("#ready")).to_have_text("ready")
    assert page.evaluate("fetch('/__broken__/').then(r => r.status)") == 500
    # The held script is cancelled while its page is still shown: a lost needed request.
    page.evaluate("window.stop()")
    problems = watch.problems()
    origin = live_server.url
    assert problems["error answers"] == [
        f"404 stylesheet {origin}/static/opshero/css/missing.css",
        f"500 fetch {origin}/__broken__/",
    ]
    assert problems["requests to other hosts"] == [
        "https://cdn.example.com/logo.png",
        "https://cdn.example.com/vendor-logo.svg was not blocked by the CSP (net::ERR_FAILED)",
    ]
    assert problems["failed requests"] == [
        f"script {origin}/static/refused.js net::ERR_CONNECTION_REFUSED"
    ]
    assert problems["needed requests cancelled"] == [f"script {origin}/static/held.js"]
    assert watch.harmless_cancels() == []
    with pytest.raises(AssertionError, match=r"missing\.css"):
        watch.assert_clean()
