"""Browser: an approver uploads a model, watches the validation run on a real worker, reads
the report, signs it, downloads artifact and signature, and verifies them offline; a
tampered copy is refused.

Every step waits for the element or download it checks, and the requests are judged by
``PageWatch`` (tests/conftest.py), so the test holds on a busy machine."""

import hashlib
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from fleet.models import HardwareTarget
from opshero.demo import DEMO_PASSWORD
from opshero.models import Organization
from opshero.roles import Role
from tests import onnx_models
from tests.conftest import browser_login, screenshot
from tests.factories import PASSWORD, make_member

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def test_upload_validate_sign_download_verify(page_factory, live_server, celery_worker, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    digits = onnx_models.digits_mlp()
    page, watch = page_factory()
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, live_server, "demo-approver", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")

    page.goto(f"{live_server.url}/o/northwind/models/")
    page.fill("#id_name", "digits-reader")
    page.fill("#id_latency_budget_ms", "50")
    page.click("form.card button[type=submit]")
    expect(page.locator("h2.page-title")).to_have_text("digits-reader")

    page.set_input_files("#id_artifact", str(digits.model_path))
    page.set_input_files("#id_inputs_file", str(digits.inputs_path))
    page.fill("#id_version", "1.0.0")
    page.click("#upload-card button[type=submit]")
    sha256 = hashlib.sha256(digits.model_path.read_bytes()).hexdigest()
    expect(page.locator("[data-testid=sha256]")).to_have_text(sha256, timeout=60_000)
    screenshot(page, "model-version-uploaded")

    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    page.select_option("#id_target", str(cpu.pk))
    page.click("[data-testid=validate-button]")
    expect(page.locator("[data-testid=run-progress]")).to_be_visible()
    screenshot(page, "model-validation-running")
    expect(page.locator("[data-testid=run-progress]")).to_have_attribute(
        "data-run-status", "passed", timeout=180_000
    )
    # Labelled inputs: every gate ran but the one left switched off (min accuracy), and the
    # header says so instead of "all passed".
    expect(page.locator("[data-testid=gates-summary]")).to_have_text(
        re.compile(r"^\d+ passed, 1 not evaluated$")
    )
    expect(page.locator("[data-testid=not-evaluated]")).to_contain_text("min_accuracy")
    expect(page.locator("[data-testid=latency-table] tbody tr")).to_have_count(1)
    accuracy = page.locator("[data-testid=accuracy]")
    expect(accuracy).to_have_text(re.compile(r"^\d\.\d{4}$"))
    assert abs(float(accuracy.inner_text()) - digits.test_accuracy) < 1e-3
    expect(page.locator(".chart .main-svg").first).to_be_visible()  # Plotly drew the charts
    screenshot(page, "model-validation-report")

    # Four-eyes: the approver who uploaded it cannot sign; a second approver does.
    expect(page.locator("[data-testid=four-eyes]")).to_be_visible()
    expect(page.locator("[data-testid=sign-button]")).to_have_count(0)
    version_url = page.url
    second = make_member(Organization.objects.get(slug="northwind"), Role.APPROVER).user
    page.context.clear_cookies()
    browser_login(page, live_server, second.username, PASSWORD)
    page.goto(version_url)
    expect(page.locator("[data-testid=sign-targets]")).to_contain_text(cpu.name)
    page.click("[data-testid=sign-button]")
    expect(page.locator("[data-testid=signature-list]")).to_contain_text("Release 1")
    screenshot(page, "model-version-signed")

    with page.expect_download() as artifact_download:
        page.click("[data-testid=download-artifact]")
    with page.expect_download() as envelope_download:
        page.click("[data-testid=download-envelope]")
    artifact = tmp_path / "digits.onnx"
    envelope = tmp_path / "digits.onnx.sig"
    artifact_download.value.save_as(artifact)
    envelope_download.value.save_as(envelope)
    keys = page.request.get(f"{live_server.url}/api/v1/signing-keys/?org=northwind").json()
    key = tmp_path / "key.pem"
    key.write_text(keys[0]["public_key_pem"])
    command = [
        sys.executable,
        "-m",
        "protocol.verify",
        str(artifact),
        str(envelope),
        "--public-key",
        str(key),
    ]
    ok = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: digits-reader 1.0.0"), (
        ok.stdout + ok.stderr
    )
    tampered = bytearray(artifact.read_bytes())
    tampered[100] ^= 0xFF
    artifact.write_bytes(bytes(tampered))
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "REFUSED" in refused.stdout + refused.stderr
    watch.assert_clean()


def test_the_shape_editor_reads_the_file_and_keeps_what_was_typed(page_factory, live_server):
    """Choosing a model with [-1, 3, '?', '?'] inputs brings one box per open axis (htmx, no
    JavaScript framework); an upload and a validation request are made from the boxes, and a
    bad size is an inline error that keeps the other boxes as typed."""
    from modelregistry.models import ModelVersion, ValidationRun

    call_command("seed_demo", stdout=io.StringIO())
    detector = onnx_models.write_model(
        onnx_models.unknown_axes_model(), Path(tempfile.mkdtemp()) / "detector.onnx"
    )
    page, watch = page_factory()
    browser_login(page, live_server, "demo-approver", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/o/northwind/models/")
    page.fill("#id_name", "detector")
    page.click("form.card button[type=submit]")
    expect(page.locator("h2.page-title")).to_have_text("detector")

    page.set_input_files("#id_artifact", str(detector))
    height = page.locator('[data-testid="shape-axis-x[2]"]')
    # The file is read on the server (its open axes); on a loaded CI machine that can take
    # longer than the default wait.
    expect(height).to_have_value("224", timeout=60_000)
    expect(page.locator('[data-testid="shape-axis-x[0]"]')).to_have_value("1")
    height.fill("48")
    page.locator('[data-testid="shape-axis-x[3]"]').fill("192")
    page.fill("#id_version", "1.0.0")
    page.click("#upload-card button[type=submit]")
    expect(page.locator("[data-testid=sha256]")).to_be_visible(timeout=60_000)
    version = ModelVersion.objects.get(version="1.0.0", model__name="detector")
    assert version.shape_buckets == {"x[0]": [1], "x[2]": [48], "x[3]": [192]}

    editor = page.locator("[data-testid=shape-editor]")
    expect(editor.locator('[data-testid="shape-axis-x[3]"]')).to_have_value("192")
    editor.locator('[data-testid="shape-axis-x[0]"]').fill("1, 2")
    editor.locator('[data-testid="shape-axis-x[2]"]').fill("0")
    page.click("[data-testid=validate-button]")
    expect(page.locator("[data-testid=shape-buckets-error]")).to_contain_text("below 1")
    expect(page.locator('[data-testid="shape-axis-x[0]"]')).to_have_value("1, 2")
    assert not ValidationRun.objects.filter(version=version).exists()
    page.locator('[data-testid="shape-axis-x[2]"]').fill("96")
    page.click("[data-testid=validate-button]")
    expect(page.locator("[data-testid=run-progress]")).to_be_visible()
    assert ValidationRun.objects.get(version=version).shape_buckets == {
        "x[0]": [1, 2],
        "x[2]": [96],
        "x[3]": [192],
    }
    screenshot(page, "model-shape-editor")
    # The refused request (a form shown again with 422, as every form does) is the one
    # console message Chromium writes; anything else is a problem.
    refused = "Failed to load resource: the server responded with a status of 422"
    assert len(watch.console_errors) == 1 and watch.console_errors[0].startswith(refused)
    watch.console_errors.clear()
    watch.assert_clean()
