"""Benchmark: the ROI calculator's live recompute, round trip in a real browser.

A throwaway OpsHero (SQLite and everything else under a temporary ``OPSHERO_VAR_DIR``,
production settings, static files collected) is served by Django's ``LiveServerThread``.
Headless Chromium signs in as a planner, opens the demo logistics scenario and changes one
input N times. For every change it records, in the page's own clock:

- *change -> swapped*: from the ``input`` event to htmx's ``afterSettle`` of the new results,
  i.e. what the user waits for, including the calculator's 400 ms debounce;
- *request -> swapped*: from htmx sending the request to ``afterSettle`` (network, Django,
  the 10,000-draw Monte Carlo, tornado, rendering, the swap and the chart redraw trigger).

The recorder is a small script added by this benchmark only (``add_init_script``, in a context
with the CSP bypassed); the product pages carry no timing code. Then it times the same endpoint
in-process with Django's test client (full middleware stack, no network), and the bare
``roi.engine.analyse`` call, for the server-side share.

Run from the repository root:

    .venv/bin/python benchmarks/bench_roi_recompute.py [--changes 40] [--server-runs 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEBOUNCE_MS = 400
FIELD = "#latency-value_per_hour_saved-likely"

RECORDER = """
(() => {
  let changedAt = null;
  let requestedAt = null;
  document.addEventListener("input", () => { changedAt = performance.now(); }, true);
  document.addEventListener("htmx:beforeRequest", () => { requestedAt = performance.now(); });
  document.addEventListener("htmx:afterSettle", (event) => {
    if (!event.target || event.target.id !== "results" || changedAt === null) return;
    const now = performance.now();
    console.log(`roi-settled ${now - changedAt} ${now - requestedAt}`);
  });
})();
"""


def _environment(var_dir: str) -> None:
    """A private OpsHero: nothing touches the developer's database, cache or broker."""
    os.environ["OPSHERO_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "opshero.settings"
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    sys.path.insert(0, str(ROOT))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _line(label: str, values: list[float]) -> str:
    return (
        f"{label}: P50 {_percentile(values, 50):.0f} ms, P95 {_percentile(values, 95):.0f} ms, "
        f"max {max(values):.0f} ms (n={len(values)})"
    )


def _prepare():
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    from opshero import demo as platform_demo
    from roi import demo as roi_demo
    from roi.models import RoiScenario

    context = platform_demo.seed()
    roi_demo.seed(context)
    scenario = RoiScenario.objects.get(organization=context["org"], name=roi_demo.SCENARIO_NAME)
    return context["org"], scenario


def _browser_run(base_url: str, org_slug: str, scenario_id: int, changes: int):
    from playwright.sync_api import sync_playwright

    from opshero.demo import DEMO_PASSWORD

    total: list[float] = []
    request: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
        context.add_init_script(RECORDER)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base_url}/login/")
        page.fill("#id_username", "demo-planner")
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{base_url}/o/{org_slug}/plan/scenarios/{scenario_id}/")
        page.wait_for_load_state("networkidle")
        if not page.locator(FIELD).is_visible():  # the most influential section opens first
            page.click("[data-bs-target='#sec-latency']")
            page.locator(FIELD).wait_for(state="visible")
        for index in range(changes + 3):  # the first three warm up the server and the page
            value = str(30 + index % 7 + (index % 2) * 0.5)
            with (
                page.expect_console_message(lambda m: m.text.startswith("roi-settled")) as seen,
                page.expect_response(lambda r: r.url.endswith("/plan/scenarios/compute/")) as got,
            ):
                page.fill(FIELD, value)
            if got.value.status != 200:
                raise SystemExit(f"recompute answered {got.value.status}")
            _label, since_change, since_request = seen.value.text.split()
            if index >= 3:
                total.append(float(since_change))
                request.append(float(since_request))
        browser.close()
    return total, request


def _server_runs(org, scenario, runs: int) -> tuple[list[float], list[float]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from roi.engine import RoiInputs, analyse
    from roi.forms import CalculatorForm

    client = Client()
    client.force_login(get_user_model().objects.get(username="demo-planner"))
    inputs = RoiInputs.from_dict(scenario.inputs)
    data = dict(CalculatorForm(inputs=inputs, name=scenario.name).raw)
    url = f"/o/{org.slug}/plan/scenarios/compute/"
    endpoint: list[float] = []
    engine: list[float] = []
    for index in range(runs + 3):
        data["latency.value_per_hour_saved.likely"] = str(30 + index % 7)
        started = time.perf_counter()
        # Form-encoded, as htmx sends it (the test client would otherwise send multipart).
        response = client.post(
            url,
            urlencode(data),
            content_type="application/x-www-form-urlencoded",
            HTTP_HX_REQUEST="true",
        )
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or b'data-testid="kpi-table"' not in response.content:
            raise SystemExit(f"in-process recompute failed: {response.status_code}")
        started = time.perf_counter()
        analyse(inputs=inputs)
        bare = (time.perf_counter() - started) * 1000
        if index >= 3:
            endpoint.append(elapsed)
            engine.append(bare)
    return endpoint, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--server-runs", type=int, default=40)
    args = parser.parse_args()
    if args.changes < 30 or args.server_runs < 30:
        parser.error("use at least 30 changes and 30 server runs for a meaningful P95")

    with tempfile.TemporaryDirectory(prefix="opshero-bench-roi-") as var_dir:
        _environment(var_dir)
        org, scenario = _prepare()

        from django.test.testcases import LiveServerThread, _StaticFilesHandler

        server = LiveServerThread("127.0.0.1", _StaticFilesHandler)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        base_url = f"http://127.0.0.1:{server.port}"
        try:
            total, request = _browser_run(base_url, org.slug, scenario.pk, args.changes)
        finally:
            server.terminate()
            server.join()
        endpoint, engine = _server_runs(org, scenario, args.server_runs)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"python {platform.python_version()}; SQLite; Django LiveServerThread; headless Chromium")
    print("scenario: logistics dock vision preset (80 inputs as ranges), 10,000 draws + tornado")
    print(f"changed input: {FIELD} ({args.changes} changes after 3 warm-up)")
    print(_line("browser change -> swapped (incl. 400 ms debounce)", total))
    print(_line("browser request -> swapped", request))
    p50, p95 = _percentile(total, 50) - DEBOUNCE_MS, _percentile(total, 95) - DEBOUNCE_MS
    print(f"browser change -> swapped minus the debounce: P50 {p50:.0f} ms, P95 {p95:.0f} ms")
    print(_line("server in-process POST /plan/scenarios/compute/ (Django test client)", endpoint))
    print(_line("engine analyse() alone (same inputs)", engine))
    print(f"mean in-process endpoint ms: {statistics.fmean(endpoint):.1f}")


if __name__ == "__main__":
    main()
