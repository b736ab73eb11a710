"""Shared fixtures: tenants, clients, a real Celery worker and a real headless Chromium.

With ``CI=true`` the run fails at start unless PostgreSQL, Redis and Chromium are all
present: in CI a missing service is a failure, never a skip. Outside CI, tests that need a
missing service are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.factories import PASSWORD, make_world

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _redis_error() -> str | None:
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - reported verbatim
        return f"Redis at REDIS_URL does not answer: {exc}"
    return None


def _postgres_error() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL does not point at PostgreSQL"
    try:
        import psycopg

        db = settings.DATABASES["default"]
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except Exception as exc:  # noqa: BLE001 - reported verbatim
        return f"PostgreSQL does not answer: {exc}"
    return None


def _chromium_error() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium is not installed at {CHROMIUM}"
    return None


SERVICE_ERRORS = {
    "postgres": _postgres_error(),
    "redis": _redis_error(),
    "browser": _chromium_error(),
}


def pytest_sessionstart(session):
    if IN_CI:
        missing = {name: err for name, err in SERVICE_ERRORS.items() if err}
        if missing:
            lines = "\n".join(f"  {name}: {err}" for name, err in missing.items())
            pytest.exit(f"CI=true but required services are missing:\n{lines}", returncode=1)


def pytest_collection_modifyitems(config, items):
    for item in items:
        for name, error in SERVICE_ERRORS.items():
            if error and item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=error))


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _own_media_root(settings, tmp_path):
    """Each test stores uploads in its own directory, so "nothing was stored" is checkable."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVIDENCE_ROOT = tmp_path / "evidence"


@pytest.fixture
def world(db):
    """Two organisations (acme, globex), each with one member per role."""
    return make_world()


@pytest.fixture
def login(client):
    """login(user) -> a Django test client signed in as that user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_as(api_client):
    """api_as(user) -> an APIClient authenticated with a real personal token of that user."""
    from opshero.services import issue_api_token

    def _as(user):
        _, token = issue_api_token(user=user, name="tests")
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api_client

    return _as


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker consuming every queue through the configured broker.

    Runs in a thread of this process against the test database (PostgreSQL in CI), with
    the same task code and routing as production workers.
    """
    from celery.contrib.testing.worker import start_worker

    from opshero.celery import app

    queues = ",".join(q.name for q in settings.CELERY_TASK_QUEUES)
    app.control.purge()
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=queues,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


# --- Browser ----------------------------------------------------------------------------------
#
# Browser tests wait for what they assert (``expect(locator)``, a response, network idle) and
# judge only the requests a page really needs: the judging lives in ``PageWatch`` below and
# every browser test gets it from ``page_factory``. On a busy machine a browser cancels work
# that no longer matters (``net::ERR_ABORTED``: the favicon of a page the test already left,
# a superseded htmx request); that is not a failure. A stylesheet or script answered with
# 404/500, a request that could not be made, and any request to another host are.

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]
ACTION_TIMEOUT_MS = 20_000  # clicks, fills, waits for a selector
NAVIGATION_TIMEOUT_MS = 45_000  # page loads on a machine whose cores are busy
EXPECT_TIMEOUT_MS = 20_000  # expect(locator)... auto-waits this long (Playwright's default: 5 s)
SCREENSHOT_TIMEOUT_MS = 15_000
# BROWSER_CPU_SLOWDOWN=4 makes Chromium run its pages 4x slower (CDP CPU throttling): with busy
# cores (two ``python -c 'while True: pass'``) it reproduces a loaded CI machine on demand.
CPU_SLOWDOWN = float(os.environ.get("BROWSER_CPU_SLOWDOWN", "1"))

# Resource types a page cannot do without. When the browser cancels one of these while the
# page that asked for it is still shown, something is wrong; any other cancelled request
# (favicon, images, prefetches) is not needed by what a test asserts.
NEEDED_TYPES = frozenset({"document", "stylesheet", "script", "font", "xhr", "fetch"})
# Types whose 4xx answer means a broken page (a missing stylesheet, script, font, image or
# icon). Documents and xhr/fetch may answer 4xx on purpose; tests assert those statuses.
ASSET_TYPES = frozenset(
    {"stylesheet", "script", "font", "image", "media", "manifest", "texttrack", "other"}
)
ABORTED = "net::ERR_ABORTED"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@pytest.fixture(scope="session")
def browser():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class _Seen:
    seq: int  # order in which the page issued the request
    url: str
    method: str
    resource_type: str
    main_frame_navigation: bool
    failure: str | None = None
    failed_at: int | None = None  # the request counter when the failure was reported
    status: int | None = None


class PageWatch:
    """Everything a page asked for, judged by ``assert_clean`` when the test is done.

    Fails on: console errors and uncaught exceptions; any request to a host other than the
    test server (the UI must work offline); a local request that failed for any reason other
    than the browser cancelling it; a cancelled request the page still needed; a 5xx answer to
    anything and a 4xx answer to an asset. ``allow_blocked(url)`` names a third-party URL that
    vendor code asks for and the content security policy must block before it is sent.
    """

    def __init__(self, origin: str):
        parts = urlsplit(origin)
        self.origin = origin
        self._scheme, self._port = parts.scheme, parts.port
        self._seen: list[_Seen] = []
        self._by_request: dict[int, _Seen] = {}
        self._keep: list[object] = []  # keeps request objects alive so their id() stays unique
        self._blocked_ok: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.downloads: list[str] = []  # URLs the page saved as files (recorded automatically)

    # -- wiring -------------------------------------------------------------------------------

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", lambda request: self._on_request(page, request))
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        page.on("download", lambda download: self.downloads.append(download.url))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_request(self, page, request) -> None:
        self._record(request, request.is_navigation_request() and request.frame == page.main_frame)

    def _record(self, request, main_frame_navigation: bool) -> _Seen:
        seen = _Seen(
            seq=len(self._seen),
            url=request.url,
            method=request.method,
            resource_type=request.resource_type,
            main_frame_navigation=main_frame_navigation,
        )
        self._seen.append(seen)
        self._by_request[id(request)] = seen
        self._keep.append(request)
        return seen

    def _lookup(self, request) -> _Seen:
        seen = self._by_request.get(id(request))
        return seen if seen is not None else self._record(request, False)

    def _on_failed(self, request) -> None:
        seen = self._lookup(request)
        seen.failure = request.failure or "unknown failure"
        seen.failed_at = len(self._seen)

    def _on_response(self, response) -> None:
        self._lookup(response.request).status = response.status

    # -- judging ------------------------------------------------------------------------------

    def allow_blocked(self, url: str) -> None:
        """A third-party URL the page may ask for; it must be blocked by the CSP, never sent."""
        self._blocked_ok.append(url)

    def is_local(self, url: str) -> bool:
        if url.startswith(("data:", "blob:", "about:")):
            return True
        parts = urlsplit(url)
        return (
            parts.scheme == self._scheme
            and parts.hostname in LOCAL_HOSTS
            and parts.port == self._port
        )

    def _navigated_between(self, first: int, last: int) -> bool:
        """Did the page start loading another document after request ``first`` and by ``last``?"""
        return any(s.main_frame_navigation and first < s.seq < last for s in self._seen)

    def _cancel_is_harmless(self, seen: _Seen) -> bool:
        if seen.resource_type not in NEEDED_TYPES:
            return True  # favicon, image, prefetch: nothing a test asserts depends on it
        if seen.resource_type == "document":
            later = any(s.main_frame_navigation and s.seq > seen.seq for s in self._seen)
            return later or seen.url in self.downloads  # superseded, or saved as a file
        if self._navigated_between(seen.seq, seen.failed_at or len(self._seen)):
            return True  # the page that asked for it was left
        # htmx (hx-sync="this:replace") cancels a request that a newer one to the same URL
        # replaces.
        return seen.resource_type in {"xhr", "fetch"} and any(
            s.seq > seen.seq and s.url == seen.url and s.method == seen.method for s in self._seen
        )

    def problems(self) -> dict[str, list[str]]:
        foreign, failed, cancelled, bad_status = [], [], [], []
        for seen in self._seen:
            if seen.url in self._blocked_ok:
                if seen.failure != "csp" or seen.status is not None:
                    foreign.append(f"{seen.url} was not blocked by the CSP ({seen.failure})")
                continue
            if not self.is_local(seen.url):
                foreign.append(seen.url)
                continue
            if seen.status is not None and (
                seen.status >= 500 or (seen.status >= 400 and seen.resource_type in ASSET_TYPES)
            ):
                # Chromium also cancels the body of an asset it will not use; one report is enough.
                bad_status.append(f"{seen.status} {seen.resource_type} {seen.url}")
            elif seen.failure == ABORTED:
                if not self._cancel_is_harmless(seen):
                    cancelled.append(f"{seen.resource_type} {seen.url}")
            elif seen.failure:
                failed.append(f"{seen.resource_type} {seen.url} {seen.failure}")
        console = [e for e in self.console_errors if not any(u in e for u in self._blocked_ok)]
        found = {
            "console errors": console,
            "uncaught page errors": self.page_errors,
            "requests to other hosts": foreign,
            "failed requests": failed,
            "needed requests cancelled": cancelled,
            "error answers": bad_status,
        }
        return {name: items for name, items in found.items() if items}

    def harmless_cancels(self) -> list[str]:
        """Local requests the browser cancelled that the page did not need (not failures)."""
        return [
            f"{s.resource_type} {s.url}"
            for s in self._seen
            if s.failure == ABORTED and self.is_local(s.url) and self._cancel_is_harmless(s)
        ]

    def assert_clean(self) -> None:
        problems = self.problems()
        assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


@pytest.fixture
def page_factory(browser, live_server):
    """page_factory(viewport=...) -> (page, watch) on a fresh browser context.

    Every browser test ends with ``watch.assert_clean()``.
    """
    contexts = []

    def _make(viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1440, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        if CPU_SLOWDOWN > 1:
            cdp = context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
        watch = PageWatch(live_server.url)
        watch.attach(page)
        return page, watch

    yield _make
    for context in contexts:
        context.close()


def browser_login(page, live_server, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait until the page it leads to has settled.

    Waits for the navigation the submit starts (to the next page, or back to the form on a
    wrong password), so that what the caller checks next is the new page, not the old one.
    """
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def screenshot(page, name: str, *, full_page: bool = True) -> Path | None:
    """Save a picture to test-artifacts/ for people to look at; no test asserts on it.

    Take it only after the test has waited for what the picture should show. A capture that
    does not finish in time on a busy machine is reported as a warning, never a failure.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    try:
        page.screenshot(
            path=str(path),
            full_page=full_page,
            animations="disabled",
            caret="hide",
            timeout=SCREENSHOT_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError as exc:
        warnings.warn(f"screenshot {name} not saved: {exc.message.splitlines()[0]}", stacklevel=2)
        return None
    return path
