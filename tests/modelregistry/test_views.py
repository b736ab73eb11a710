"""Registry HTML pages and shape buckets: a shape editor with one box per dynamic axis, and
every bad bucket value an inline error on the form that keeps what was typed."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.models import HardwareTarget
from modelregistry import services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.roles import Role
from tests import onnx_models

AXES = ["x[0]", "x[2]", "x[3]"]


def _detector_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("detector.onnx", onnx_models.unknown_axes_model().SerializeToString())


@pytest.fixture
def detector_version(world):
    actor = Actor.for_user(world.a.user(Role.APPROVER))
    model = services.create_model(organization=world.a.org, actor=actor, name="detector")
    return services.upload_version(
        model=model,
        actor=actor,
        artifact=SimpleUploadedFile(
            "detector.onnx", onnx_models.unknown_axes_model().SerializeToString()
        ),
        version="1.0.0",
    )


@pytest.fixture
def approver_client(client, world):
    client.force_login(world.a.user(Role.APPROVER))
    return client


def _page(version):
    return f"/o/{version.model.organization.slug}/models/versions/{version.pk}/"


def _value(html: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    if not match:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


@pytest.mark.django_db
def test_the_validate_form_offers_one_box_per_open_axis_prefilled(
    approver_client, detector_version
):
    html = approver_client.get(_page(detector_version)).content.decode()
    assert 'data-testid="shape-editor"' in html
    assert [_value(html, f"axis__{key}") for key in AXES] == ["1", "224", "224"]
    assert 'data-shape-axis="x[2]"' in html and "image height" in html
    assert "Advanced: shape buckets as JSON" in html


@pytest.mark.django_db
def test_the_boxes_become_buckets(approver_client, detector_version):
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    response = approver_client.post(
        f"{_page(detector_version)}validate/",
        {"target": cpu.pk, "axis__x[0]": "1, 2", "axis__x[2]": "48", "axis__x[3]": "192"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = ValidationRun.objects.get()
    assert run.shape_buckets == {"x[0]": [1, 2], "x[2]": [48], "x[3]": [192]}


@pytest.mark.django_db
def test_an_open_box_is_an_inline_error_that_keeps_what_was_typed(
    approver_client, detector_version
):
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    response = approver_client.post(
        f"{_page(detector_version)}validate/",
        {"target": cpu.pk, "axis__x[0]": "1", "axis__x[2]": "48", "axis__x[3]": ""},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="shape-buckets-error"' in html and "x[3]" in html
    assert [_value(html, f"axis__{key}") for key in AXES] == ["1", "48", ""]
    assert not ValidationRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        "5",
        "true",
        '"[1,2]"',
        "[1,2]",
        "[null]",
        '{"x[0]": "a"}',
        '{"x[0]": []}',
        '{"x[0]": [0]}',
        '{"nope": [1]}',
        '{"unk__214": [100000000]}',
        '{"x[0]": [1], "x[2]": [18000], "x[3]": [18000]}',
        "not json",
    ],
)
def test_bad_raw_json_is_an_inline_error_on_the_validate_form(
    approver_client, detector_version, text
):
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    response = approver_client.post(
        f"{_page(detector_version)}validate/", {"target": cpu.pk, "shape_buckets": text}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="shape-buckets-error"' in html
    assert unescape(_value(html, "shape_buckets")) == text  # what was typed is kept
    assert not ValidationRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["5", '"[1,2]"', "[null]", '{"x[0]": [0]}', '{"unk__214": [100000000]}', "[1,2]"]
)
def test_bad_buckets_are_an_inline_error_on_the_upload_form(
    approver_client, detector_version, text
):
    model = detector_version.model
    response = approver_client.post(
        f"/o/{model.organization.slug}/models/{model.pk}/upload/",
        {
            "version": "2.0.0",
            "artifact": SimpleUploadedFile(
                "detector.onnx", onnx_models.unknown_axes_model().SerializeToString()
            ),
            "shape_buckets": text,
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    field = re.search(r'<input[^>]*name="shape_buckets"[^>]*>', html).group(0)
    assert "is-invalid" in field
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_choosing_a_file_brings_the_upload_form_one_box_per_open_axis(
    approver_client, detector_version
):
    model = detector_version.model
    url = f"/o/{model.organization.slug}/models/{model.pk}/upload/shapes/"
    response = approver_client.post(url, {"artifact": _detector_file()}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<div id="upload-shape-editor"')
    assert [_value(html, f"axis__{key}") for key in AXES] == ["1", "224", "224"]
    static = onnx_models.tiny_model(input_shape=[1, 4]).SerializeToString()
    response = approver_client.post(url, {"artifact": SimpleUploadedFile("s.onnx", static)})
    assert 'data-testid="shapes-static"' in response.content.decode()
    response = approver_client.post(url, {"artifact": SimpleUploadedFile("s.onnx", b"nope")})
    assert "axis__" not in response.content.decode()
    assert ModelVersion.objects.count() == 1  # nothing is stored


@pytest.mark.django_db
def test_the_upload_boxes_become_the_versions_buckets_and_survive_an_error(
    approver_client, detector_version
):
    model = detector_version.model
    url = f"/o/{model.organization.slug}/models/{model.pk}/upload/"
    bad = approver_client.post(
        url,
        {"version": "2.0.0", "artifact": _detector_file(), "axis__x[2]": "0", "axis__x[3]": "96"},
    )
    assert bad.status_code == 422
    html = bad.content.decode()
    assert 'data-testid="shape-buckets-error"' in html or "is-invalid" in html
    assert [_value(html, f"axis__{key}") for key in ["x[2]", "x[3]"]] == ["0", "96"]
    good = approver_client.post(
        url,
        {"version": "2.0.0", "artifact": _detector_file(), "axis__x[2]": "48", "axis__x[3]": "96"},
    )
    assert good.status_code == 302, good.content.decode()[:1500]
    assert ModelVersion.objects.get(version="2.0.0").shape_buckets == {
        "x[2]": [48],
        "x[3]": [96],
    }


@pytest.mark.django_db
def test_the_validate_boxes_start_with_the_uploads_buckets(approver_client, detector_version):
    ModelVersion.objects.filter(pk=detector_version.pk).update(
        shape_buckets={"x[0]": [1, 8], "x[2]": [48], "x[3]": 96}
    )
    detector_version.refresh_from_db()
    html = approver_client.get(_page(detector_version)).content.decode()
    assert [_value(html, f"axis__{key}") for key in AXES] == ["1, 8", "48", "96"]
