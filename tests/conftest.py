"""Shared fixtures: tenants, clients, a real Celery worker and a real headless Chromium.

With ``CI=true`` the run fails at start unless PostgreSQL, Redis and Chromium are all
present: in CI a missing service is a failure, never a skip. Outside CI, tests that need a
missing service are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


@pytest.fixture(scope="session")
def browser():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageWatch:
    """What a page did that it should not: console errors and requests to other hosts."""

    def __init__(self, origin: str):
        self.origin = origin
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.failed_requests: list[str] = []
        self.aborted_navigations: list[str] = []
        self.downloads: list[str] = []  # URL fragments the test downloads on purpose

    def on_console(self, message):
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_request(self, request):
        url = request.url
        if not (url.startswith(self.origin) or url.startswith(("data:", "blob:", "about:"))):
            self.foreign_requests.append(url)

    def on_failed(self, request):
        # A navigation that turns into a file download is reported as aborted; that is the
        # browser saving the file, not a failure.
        if request.failure == "net::ERR_ABORTED" and request.is_navigation_request():
            self.aborted_navigations.append(request.url)
            return
        self.failed_requests.append(f"{request.url} {request.failure}")

    def assert_clean(self):
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.foreign_requests == [], f"requests to other hosts: {self.foreign_requests}"
        assert self.failed_requests == [], f"failed requests: {self.failed_requests}"
        unexpected = [
            url for url in self.aborted_navigations if not any(d in url for d in self.downloads)
        ]
        assert unexpected == [], f"aborted page loads: {unexpected}"


@pytest.fixture
def page_factory(browser, live_server):
    """page_factory(viewport=...) -> (page, watch) on a fresh browser context."""
    contexts = []

    def _make(viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1440, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        watch = PageWatch(live_server.url)
        page.on("console", watch.on_console)
        page.on("request", watch.on_request)
        page.on("requestfailed", watch.on_failed)
        return page, watch

    yield _make
    for context in contexts:
        context.close()


def browser_login(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
