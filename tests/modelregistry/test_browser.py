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
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from fleet.models import HardwareTarget
from opshero.demo import DEMO_PASSWORD
from tests import onnx_models
from tests.conftest import browser_login, screenshot

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
    expect(page.locator("[data-testid=gates]")).to_contain_text("all passed")
    expect(page.locator("[data-testid=latency-table] tbody tr")).to_have_count(1)
    accuracy = page.locator("[data-testid=accuracy]")
    expect(accuracy).to_have_text(re.compile(r"^\d\.\d{4}$"))
    assert abs(float(accuracy.inner_text()) - digits.test_accuracy) < 1e-3
    expect(page.locator(".chart .main-svg").first).to_be_visible()  # Plotly drew the charts
    screenshot(page, "model-validation-report")

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
