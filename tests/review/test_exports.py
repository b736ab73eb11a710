"""The labelled export: de-identified, matching its manifest, only what retention still holds."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from opshero.errors import InvalidInput
from opshero.models import AuditEvent
from review import exports, storage
from review.models import EvidenceSample, LabelledExport
from review.tasks import build_labelled_export_task
from tests.factories import make_site

from .builders import jpeg_bytes, json_sample, png_bytes
from .isolation_data import SYSTEM, reviewed_sample, stored_sample

pytestmark = pytest.mark.django_db


def _export(org, **options) -> LabelledExport:
    export = exports.create_labelled_export(
        organization=org, actor=SYSTEM, build_now=True, **options
    )
    assert export.status == "ready", export.error
    return export


def _zip(export: LabelledExport) -> tuple[bytes, zipfile.ZipFile]:
    export.refresh_from_db()
    on_disk = storage.read_object(export.object_name)
    data = exports.open_export(export)
    assert not on_disk.startswith(b"PK") and data.startswith(b"PK")  # sealed at rest
    assert data not in on_disk
    return data, zipfile.ZipFile(io.BytesIO(data))


def _labels(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))


def _identifiers(device) -> list[str]:
    return [device.name, str(device.uid), device.serial, device.site.name]


def test_the_export_holds_no_device_identifiers_or_free_text(world, gateway, version):
    device, _ = gateway
    device.refresh_from_db()
    reviewed_sample(
        device,
        jpeg_bytes(gps=True),
        sequence=1,
        media="image/jpeg",
        review_reason="told by nurse Jansen at North dock",
    )
    reviewed_sample(
        device,
        json_sample(device=device.name, serial=device.serial, note="North dock bay 4"),
        sequence=2,
        true_class="dent",
    )
    export = _export(world.a.org)
    data, archive = _zip(export)
    assert export.samples == 2
    contents = [data] + [archive.read(name) for name in archive.namelist()]
    for needle in [*_identifiers(device), "Jansen", "bay 4", "DockCam", "SN-0042"]:
        for blob in contents:
            assert needle.encode() not in blob, f"{needle!r} is in the export"
    names = sorted(archive.namelist())
    assert names == [
        "labels.csv",
        "manifest.json",
        "samples/000001.jpg",
        "samples/000002.json",
    ]
    samples = EvidenceSample.objects.filter(organization=world.a.org)
    for sample in samples:
        assert str(sample.pk) not in data.decode("latin-1")
    assert json.loads(archive.read("samples/000002.json")) == {
        "inputs": {"input": [[0.1, 0.2, 0.3]]}
    }
    rows = _labels(archive)
    assert list(rows[0]) == list(exports.LABEL_COLUMNS)
    assert [(r["file"], r["predicted_class"], r["true_class"], r["verdict"]) for r in rows] == [
        ("samples/000001.jpg", "dent", "scratch", "corrected"),
        ("samples/000002.json", "dent", "dent", "confirmed"),
    ]
    assert rows[0]["confidence"] == "0.41" and rows[0]["site_kind"] == "dock"
    assert (rows[0]["model_name"], rows[0]["model_version"]) == ("parcel-damage", "v3")


def test_device_ids_and_free_text_only_when_chosen(world, gateway, version):
    device, _ = gateway
    device.refresh_from_db()
    reviewed_sample(device, json_sample(note="bay 4"), sequence=1, review_reason="dented lid")
    export = _export(world.a.org, include_device_ids=True, include_free_text=True)
    _, archive = _zip(export)
    (row,) = _labels(archive)
    assert (row["device_id"], row["site_name"]) == (str(device.uid), "North dock")
    assert row["review_reason"] == "dented lid"
    assert json.loads(archive.read("samples/000001.json"))["note"] == "bay 4"
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["options"]["include_device_ids"] is True
    assert manifest["options"]["include_free_text"] is True


def test_images_are_re_encoded_without_exif_icc_or_text(world, gateway, version):
    device, _ = gateway
    original = jpeg_bytes(gps=True)
    with Image.open(io.BytesIO(original)) as source:
        assert source.getexif()  # the upload has EXIF (make, software, GPS)
    reviewed_sample(device, original, sequence=1, media="image/jpeg")
    reviewed_sample(device, png_bytes(exif=b"DockCam 3000"), sequence=2, media="image/png")
    _, archive = _zip(_export(world.a.org))
    for name, fmt in (("samples/000001.jpg", "JPEG"), ("samples/000002.png", "PNG")):
        with Image.open(io.BytesIO(archive.read(name))) as image:
            assert image.format == fmt
            assert not image.getexif()
            assert "exif" not in image.info and "icc_profile" not in image.info
            assert not any(key in image.info for key in ("Make", "comment", "Software"))
            image.load()
    with Image.open(io.BytesIO(archive.read("samples/000001.jpg"))) as image:
        assert image.size == (16, 16)
        red, green, _ = image.getpixel((8, 8))
        assert red > 150 and green < 60  # the pixels are still the picture


def test_the_manifest_lists_every_file_with_its_digest(world, gateway, version):
    device, _ = gateway
    reviewed_sample(device, png_bytes(size=3000), sequence=1, media="image/png")
    reviewed_sample(device, json_sample(), sequence=2)
    export = _export(world.a.org)
    data, archive = _zip(export)
    assert export.sha256 == hashlib.sha256(data).hexdigest()
    assert export.size_bytes == len(data)
    manifest_bytes = archive.read("manifest.json")
    assert export.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    manifest = json.loads(manifest_bytes)
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"manifest.json"}
    for name, entry in listed.items():
        content = archive.read(name)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["size"] == len(content)
    assert manifest["export_id"] == str(export.pk)
    assert manifest["counts"]["samples"] == 2
    assert (manifest["counts"]["images"], manifest["counts"]["json"]) == (1, 1)
    assert manifest["options"] == {  # no site ids: identifiers were not asked for
        "model_version_id": None,
        "include_device_ids": False,
        "include_free_text": False,
    }


def test_only_reviewed_samples_within_retention_are_exported(world, gateway, version):
    device, _ = gateway
    kept = reviewed_sample(device, json_sample(n=1), sequence=1)
    expired = reviewed_sample(device, json_sample(n=2), sequence=2)
    EvidenceSample.objects.filter(pk=expired.pk).update(
        delete_after=timezone.now() - timedelta(minutes=1)
    )
    stored_sample(device, json_sample(n=3), sequence=3)  # linked, not reviewed
    stored_sample(device, json_sample(n=4), sequence=4, linked=False)  # pending
    export = _export(world.a.org)
    _, archive = _zip(export)
    assert export.samples == 1
    assert json.loads(archive.read("samples/000001.json")) == json.loads(
        exports._de_identified(json_sample(n=1), "application/json", keep_other_keys=False)
    )
    assert kept.pk != expired.pk


def test_missing_or_tampered_objects_are_left_out_and_counted(world, gateway, version):
    device, _ = gateway
    good = reviewed_sample(device, json_sample(n=1), sequence=1)
    missing = reviewed_sample(device, json_sample(n=2), sequence=2)
    tampered = reviewed_sample(device, json_sample(n=3), sequence=3)
    storage.delete_object(missing.object_name)
    path = storage.open_path(tampered.object_name)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    export = _export(world.a.org)
    _, archive = _zip(export)
    counts = json.loads(archive.read("manifest.json"))["counts"]
    assert (counts["samples"], counts["left_out_missing"], counts["left_out_failed_integrity"]) == (
        1,
        1,
        1,
    )
    assert good.pk


def test_an_export_limited_to_a_site_and_a_version(world, gateway, version):
    from tests.factories import enroll_device

    from .builders import open_evidence_policy

    device, _ = gateway
    other_site = make_site(world.a.org, "South dock")
    open_evidence_policy(other_site)
    other, _ = enroll_device(world.a.org, site=other_site)
    reviewed_sample(device, json_sample(n=1), sequence=1)
    reviewed_sample(other, json_sample(n=2), sequence=1)
    assert _export(world.a.org, site_ids=[other_site.pk]).samples == 1
    assert _export(world.a.org, model_version_id=version.pk).samples == 2
    assert _export(world.a.org, site_ids=[device.site_id, other_site.pk]).samples == 2


def test_options_of_another_organisation_are_refused(world, version):
    foreign = make_site(world.b.org, "Globex ward")
    with pytest.raises(InvalidInput) as caught:
        exports.create_labelled_export(
            organization=world.a.org, actor=SYSTEM, site_ids=[foreign.pk], model_version_id=-1
        )
    assert set(caught.value.fields) == {"sites", "model_version"}
    assert not LabelledExport.objects.exists()


def test_creating_is_audited_and_built_by_the_task_after_commit(
    world, gateway, version, django_capture_on_commit_callbacks, monkeypatch
):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    queued: list[str] = []
    monkeypatch.setattr(build_labelled_export_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM)
    assert export.status == "building" and not queued  # nothing is queued before the commit
    for callback in callbacks:
        callback()
    assert queued == [str(export.pk)]
    event = AuditEvent.objects.get(verb="evidence.export_created")
    assert event.target_id == str(export.pk)
    assert event.data["options"]["include_device_ids"] is False
    # Reading the samples for the export audits no view of each one.
    assert not AuditEvent.objects.filter(verb="evidence.viewed").exists()
    assert build_labelled_export_task(str(export.pk)) == "ready"
    assert build_labelled_export_task(str(export.pk)) == "ready"  # redelivered: left as it is
    export.refresh_from_db()
    assert export.samples == 1 and storage.object_exists(export.object_name)
    assert not AuditEvent.objects.filter(verb="evidence.viewed").exists()


def test_an_export_that_cannot_be_built_is_failed_with_its_reason(
    world, gateway, version, monkeypatch
):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)

    def broken(name, data):
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write_object", broken)
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    assert export.status == "failed" and "disk full" in export.error
    assert export.finished_at is not None


def test_formula_leads_in_labels_are_neutralised(world, gateway):
    from .builders import registered_model

    registered_model(world.a.org, classes=["dent", "=HYPERLINK(1)"])
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1, true_class="=HYPERLINK(1)")
    _, archive = _zip(_export(world.a.org))
    (row,) = _labels(archive)
    assert row["true_class"] == "'=HYPERLINK(1)"


def test_a_summarised_sample_keeps_its_summary_and_nothing_else(world, gateway, version):
    device, _ = gateway
    body = json.dumps(
        {
            "inputs_summary": {"input": {"shape": [1, 40000], "min": 0.0, "max": 1.0}},
            "site_note": "bay 4",
        }
    ).encode()
    reviewed_sample(device, body, sequence=1)
    _, archive = _zip(_export(world.a.org))
    assert json.loads(archive.read("samples/000001.json")) == {
        "inputs_summary": {"input": {"shape": [1, 40000], "min": 0.0, "max": 1.0}}
    }
