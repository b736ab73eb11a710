"""The labelled export: a de-identified dataset of reviewed evidence for retraining, and its reads.

An export is a zip: ``samples/<n>.<ext>`` (opaque sequential names, never a sample id or a
device name), ``labels.csv`` (one row a sample: its file, true and predicted class, ...) and
``manifest.json`` (every file with its SHA-256 and size, the counts, the options, when and which
export). What goes in:

- only *reviewed* samples still within retention (``delete_after`` in the future) whose object is
  there and authenticates; a sample that fails its integrity check is left out and counted;
- images re-encoded by Pillow from their pixels alone: EXIF (camera, serial, GPS), ICC profiles
  and text chunks are not carried over (an EXIF orientation is applied to the pixels first);
- JSON samples reduced to their ``inputs`` (other keys only with ``include_free_text``);
- device and site identifiers only with ``include_device_ids``; review reasons (free text a
  person typed) only with ``include_free_text``.

The export's own audit event (``evidence.export_created``) covers the samples it reads: they are
decrypted here without an audit event each. The zip holds de-identified data only and is stored
as it is (not encrypted) in the evidence store; exports are deleted on the organisation's
retention schedule like the samples (``delete_expired_exports``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from fleet.device_csv import neutralise_cell
from fleet.models import Site
from modelregistry.models import ModelVersion
from opshero.actors import Actor
from opshero.errors import InvalidInput, NotFound
from opshero.models import Organization
from opshero.services import record_audit_event

from . import crypto, storage
from .audit import ReviewVerb
from .models import EvidenceSample, LabelledExport
from .selectors import evidence_settings_for
from .transitions import transition_export

log = logging.getLogger(__name__)
S = EvidenceSample.Status
E = LabelledExport.Status

LABEL_COLUMNS = (
    "file",
    "true_class",
    "predicted_class",
    "confidence",
    "verdict",
    "sample_reason",
    "model_name",
    "model_version",
    "site_kind",
)
DEVICE_COLUMNS = ("device_id", "site_name")
FREE_TEXT_COLUMNS = ("review_reason",)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "application/json": "json"}
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
EXPORTS_SHOWN = 50
BUILD_CHUNK = 500


# --- reads --------------------------------------------------------------------------------------


def exports_for_org(*, org: Organization) -> QuerySet[LabelledExport]:
    return LabelledExport.objects.filter(organization=org).select_related("created_by")


def export_for_org(*, org: Organization, pk) -> LabelledExport | None:
    try:
        return LabelledExport.objects.filter(organization=org, pk=pk).first()
    except (ValueError, TypeError):
        return None


def exportable_samples(
    *,
    org: Organization,
    site_ids: list[int] | None = None,
    model_version_id: int | None = None,
    now: datetime | None = None,
) -> QuerySet[EvidenceSample]:
    """Reviewed samples still within retention, with their key (what an export may hold)."""
    now = now or timezone.now()
    samples = EvidenceSample.objects.filter(
        organization=org, status=S.REVIEWED, delete_after__gt=now, wrapped_key__isnull=False
    )
    if site_ids:
        samples = samples.filter(site_id__in=site_ids)
    if model_version_id is not None:
        samples = samples.filter(model_version_id=model_version_id)
    return samples


def export_choices(*, org: Organization) -> tuple[list[Site], list[ModelVersion]]:
    """The sites and the model versions an export may be limited to."""
    sites = list(Site.objects.filter(organization=org).order_by("name", "pk"))
    versions = list(
        ModelVersion.objects.filter(model__organization=org)
        .select_related("model")
        .order_by("model__name", "-pk")
    )
    return sites, versions


# --- writes -------------------------------------------------------------------------------------


def create_labelled_export(
    *,
    organization: Organization,
    actor: Actor,
    site_ids: list[int] | None = None,
    model_version_id: int | None = None,
    include_device_ids: bool = False,
    include_free_text: bool = False,
    build_now: bool = False,
) -> LabelledExport:
    """Ask for a labelled export; a worker builds it once this commits (``build_now``: here).

    Refuses (``InvalidInput``) sites or a model version that are not the organisation's.
    Audited (``evidence.export_created``) with its options: that event covers every sample the
    export reads."""
    site_ids = sorted({int(pk) for pk in site_ids or []})
    errors: dict[str, list[str]] = {}
    if site_ids:
        known = set(
            Site.objects.filter(organization=organization, pk__in=site_ids).values_list(
                "pk", flat=True
            )
        )
        if known != set(site_ids):
            errors["sites"] = ["Choose sites of this organisation."]
    if model_version_id is not None and not (
        ModelVersion.objects.filter(model__organization=organization, pk=model_version_id).exists()
    ):
        errors["model_version"] = ["Choose a model version of this organisation."]
    if errors:
        raise InvalidInput("The export's options are not valid.", fields=errors)
    options = {
        "site_ids": site_ids,
        "model_version_id": model_version_id,
        "include_device_ids": bool(include_device_ids),
        "include_free_text": bool(include_free_text),
    }
    with transaction.atomic():
        export = LabelledExport.objects.create(
            organization=organization, created_by=actor.user, options=options
        )
        record_audit_event(
            organization=organization,
            actor=actor,
            verb=ReviewVerb.EXPORT_CREATED,
            target_type="labelled_export",
            target_id=str(export.pk),
            target_label=f"labelled export of {export.created_at:%Y-%m-%d %H:%M} UTC",
            data={"options": options},
        )
        if not build_now:
            transaction.on_commit(lambda: _enqueue_build(str(export.pk)))
    if build_now:
        export = build_labelled_export(export.pk)
    return export


def _enqueue_build(export_id: str) -> None:
    from .tasks import build_labelled_export_task

    build_labelled_export_task.delay(export_id)


@dataclass
class _Built:
    files: list[dict[str, Any]]
    samples: int
    images: int
    json: int
    missing: int
    tampered: int
    site_kinds: set[str]
    # The earliest deletion time of the samples it holds: the export goes then too, so no
    # sample outlives its retention inside an export.
    delete_by: datetime | None = None


def build_labelled_export(export_id) -> LabelledExport:
    """Build an export's zip and mark it ready (or failed, with the reason). Run by a worker;
    an export that is no longer building is left as it is (a redelivered task)."""
    export = LabelledExport.objects.select_related("organization").filter(pk=export_id).first()
    if export is None:
        raise NotFound("No such export.", code="export_not_found")
    if export.status != E.BUILDING:
        return export
    name = storage.export_object_name(
        organization_id=export.organization_id, export_id=str(export.pk)
    )
    try:
        archive, built, manifest_sha256 = _build_zip(export)
        sealed = crypto.seal(
            archive,
            master=settings.EVIDENCE_MASTER_KEY,
            organization_id=export.organization_id,
            sample_id=_export_key_id(export),
        )
        storage.write_object(name, sealed.ciphertext)
    except Exception as exc:
        log.exception("labelled export %s failed", export.pk)
        storage.delete_object(name)
        return _finish(export, to=E.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
    return _finish(
        export,
        to=E.READY,
        samples=built.samples,
        size_bytes=len(archive),
        sha256=hashlib.sha256(archive).hexdigest(),
        manifest_sha256=manifest_sha256,
        object_name=name,
        wrapped_key=sealed.wrapped_key,
        site_kinds=sorted(built.site_kinds),
        delete_by=built.delete_by,
    )


@transaction.atomic
def _finish(
    export: LabelledExport, *, to: str, site_kinds=None, delete_by=None, **fields
) -> LabelledExport:
    locked = LabelledExport.objects.select_for_update().get(pk=export.pk)
    if locked.status != E.BUILDING:  # another worker finished it first
        return locked
    transition_export(locked, to)
    for key, value in fields.items():
        setattr(locked, key, value)
    if site_kinds is not None:
        # Which kinds of site it holds: a clinic's samples keep the export to clinic retention.
        locked.options = {**locked.options, "site_kinds": site_kinds}
    if delete_by is not None:
        locked.options = {**locked.options, "delete_by": delete_by.astimezone(UTC).isoformat()}
    locked.finished_at = timezone.now()
    locked.save()
    return locked


def _build_zip(export: LabelledExport) -> tuple[bytes, _Built, str]:
    options = export.options
    with_devices = bool(options.get("include_device_ids"))
    with_text = bool(options.get("include_free_text"))
    samples = (
        exportable_samples(
            org=export.organization,
            site_ids=options.get("site_ids") or None,
            model_version_id=options.get("model_version_id"),
        )
        .select_related("review", "site", "device")
        .order_by("received_at", "pk")
    )
    moment = export.created_at.astimezone(UTC)
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    built = _Built(files=[], samples=0, images=0, json=0, missing=0, tampered=0, site_kinds=set())
    labels = io.StringIO()
    writer = csv.writer(labels, lineterminator="\n")
    writer.writerow(
        LABEL_COLUMNS + (DEVICE_COLUMNS if with_devices else ()) + (FREE_TEXT_COLUMNS * with_text)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for sample in samples.iterator(chunk_size=BUILD_CHUNK):
            plaintext = _open_unaudited(sample)
            if plaintext is None:
                built.missing += 1
                continue
            if plaintext is False:
                built.tampered += 1
                continue
            try:
                content = _de_identified(plaintext, sample.media_type, keep_other_keys=with_text)
            except ValueError as exc:
                log.warning("evidence %s left out of an export: %s", sample.pk, exc)
                built.tampered += 1
                continue
            built.samples += 1
            file_name = f"samples/{built.samples:06d}.{_EXTENSIONS.get(sample.media_type, 'bin')}"
            _add(archive, built, file_name, content, stamp, compress=not sample.is_image)
            if sample.is_image:
                built.images += 1
            else:
                built.json += 1
            built.site_kinds.add(sample.site_kind)
            if built.delete_by is None or sample.delete_after < built.delete_by:
                built.delete_by = sample.delete_after
            review = sample.review
            row = [
                file_name,
                review.true_class,
                review.predicted_class,
                f"{review.confidence:.6g}",
                review.verdict,
                review.sample_reason,
                sample.model_name,
                sample.model_version_label,
                sample.site_kind,
            ]
            if with_devices:
                row += [str(sample.device.uid), sample.site.name]
            if with_text:
                row.append(review.reason)
            writer.writerow([neutralise_cell(str(cell)) for cell in row])
        _add(archive, built, "labels.csv", labels.getvalue().encode(), stamp, compress=True)
        manifest = {
            "export_id": str(export.pk),
            "created_at": export.created_at.astimezone(UTC).isoformat(),
            "options": {
                key: options.get(key)
                # Which sites were chosen names them: only when identifiers were asked for.
                for key in (
                    ("site_ids", "model_version_id", "include_device_ids")
                    if with_devices
                    else ("model_version_id", "include_device_ids")
                )
            }
            | {"include_free_text": with_text},
            "counts": {
                "samples": built.samples,
                "images": built.images,
                "json": built.json,
                "left_out_missing": built.missing,
                "left_out_failed_integrity": built.tampered,
            },
            "de_identification": (
                "images re-encoded from pixels (no EXIF, ICC or text chunks); JSON samples keep "
                + ("all their keys" if with_text else "their inputs only")
                + "; "
                + ("device and site identifiers included" if with_devices else "no device ids")
                + "; "
                + ("review reasons included" if with_text else "no free text")
            ),
            "files": built.files,
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = zipfile.ZipInfo("manifest.json", date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, manifest_bytes)
    return out.getvalue(), built, hashlib.sha256(manifest_bytes).hexdigest()


def _add(archive, built: _Built, name: str, content: bytes, stamp, *, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)
    # Images are compressed already; deflating them again costs time for nothing.
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    archive.writestr(info, content)
    built.files.append(
        {"name": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    )


def _open_unaudited(sample: EvidenceSample) -> bytes | bool | None:
    """The sample's bytes; None when its object is gone, False when it does not authenticate.

    ``services.read_evidence`` without its per-read audit event (the export's event covers it)."""
    if sample.wrapped_key is None:
        return None
    try:
        ciphertext = storage.read_object(sample.object_name)
    except FileNotFoundError:
        return None
    try:
        return crypto.open_sample(
            ciphertext,
            bytes(sample.wrapped_key),
            master=settings.EVIDENCE_MASTER_KEY,
            organization_id=sample.organization_id,
            sample_id=str(sample.pk),
            key_version=sample.key_version,
        )
    except crypto.EvidenceTampered as exc:
        log.error("evidence %s failed its integrity check in an export: %s", sample.pk, exc)
        return False


def _de_identified(plaintext: bytes, media_type: str, *, keep_other_keys: bool) -> bytes:
    """What of a sample goes into an export: pixels only, or the JSON's inputs."""
    if media_type in _FORMATS:
        return reencode_image(plaintext, _FORMATS[media_type])
    try:
        document = json.loads(plaintext)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        document = {"inputs": document}
    # A gateway sends a summary (shape, range, mean) instead of inputs too large for a sample.
    kept = (
        document
        if keep_other_keys
        else {key: document[key] for key in ("inputs", "inputs_summary") if key in document}
    )
    return json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()


def reencode_image(data: bytes, image_format: str) -> bytes:
    """The image's pixels in a new file of the same format, and nothing else: no EXIF (camera,
    serial, GPS), ICC profile, comments or text chunks. An EXIF orientation is applied first, so
    the picture stays upright once the tag is gone."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            upright = ImageOps.exif_transpose(source)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"the image does not decode: {exc}") from None
    if image_format == "JPEG":
        wanted = "L" if upright.mode in ("1", "L", "I;16") else "RGB"
    else:
        wanted = upright.mode if upright.mode in ("1", "L", "LA", "RGB", "RGBA") else "RGBA"
    if upright.mode != wanted:
        upright = upright.convert(wanted)
    # A fresh image from the raw pixels carries no ``info`` (exif, icc_profile, text, dpi, ...).
    clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    out = io.BytesIO()
    if image_format == "JPEG":
        clean.save(out, format="JPEG", quality=95)
    else:
        clean.save(out, format="PNG", optimize=False)
    return out.getvalue()


@transaction.atomic
def record_export_download(*, export: LabelledExport, actor: Actor) -> str:
    """Audit a download of a ready export and give its object's name (404 when there is none)."""
    if export.status != E.READY or not export.object_name:
        raise NotFound("This export is not ready to download.", code="export_not_ready")
    if not storage.object_exists(export.object_name):
        raise NotFound("This export's file is gone (deleted on schedule).", code="export_missing")
    record_audit_event(
        organization=export.organization,
        actor=actor,
        verb=ReviewVerb.EXPORT_DOWNLOADED,
        target_type="labelled_export",
        target_id=str(export.pk),
        target_label=f"labelled export of {export.created_at:%Y-%m-%d %H:%M} UTC",
        data={"samples": export.samples, "bytes": export.size_bytes, "sha256": export.sha256},
    )
    return export.object_name


def export_retention(*, export: LabelledExport, retention_days: int, clinic_days: int) -> timedelta:
    """How long an export is kept: a clinic's retention when it holds a clinic's samples (or is
    not built yet, so its content is unknown), the organisation's otherwise."""
    kinds = export.options.get("site_kinds")
    strict = kinds is None or Site.Kind.CLINIC in kinds
    return timedelta(days=clinic_days if strict else retention_days)


def delete_expired_exports(now: datetime | None = None) -> int:
    """Delete exports (file and row) older than their organisation's retention; each deletion
    is audited (``evidence.deleted``, target ``labelled_export``). Run by beat."""
    now = now or timezone.now()
    candidates = list(
        LabelledExport.objects.select_related("organization").order_by(
            "organization_id", "created_at"
        )
    )
    schedules: dict[int, tuple[int, int]] = {}
    deleted = 0
    for export in candidates:
        org = export.organization
        if org.pk not in schedules:
            current = evidence_settings_for(org=org)
            schedules[org.pk] = (current.retention_days, current.clinic_retention_days)
        retention_days, clinic_days = schedules[org.pk]
        keep = export_retention(
            export=export, retention_days=retention_days, clinic_days=clinic_days
        )
        delete_by = export.options.get("delete_by")
        due = (
            datetime.fromisoformat(delete_by) <= now
            if delete_by
            else export.created_at + keep <= now
        )
        if not due:
            continue
        with transaction.atomic():
            gone = LabelledExport.objects.select_for_update().filter(pk=export.pk).first()
            if gone is None:
                continue
            record_audit_event(
                organization=org,
                actor=Actor.system("evidence retention"),
                verb=ReviewVerb.EVIDENCE_DELETED,
                target_type="labelled_export",
                target_id=str(gone.pk),
                target_label=f"labelled export of {gone.created_at:%Y-%m-%d %H:%M} UTC",
                data={"cause": "retention", "samples": gone.samples, "bytes": gone.size_bytes},
            )
            name = gone.object_name or storage.export_object_name(
                organization_id=org.pk, export_id=str(gone.pk)
            )
            gone.delete()
            transaction.on_commit(lambda name=name: storage.delete_object(name))
        deleted += 1
    return deleted


def _export_key_id(export: LabelledExport) -> str:
    # Bound into the encryption's associated data: an export's object never opens as a sample's.
    return f"export:{export.pk}"


def open_export(export: LabelledExport) -> bytes:
    """The export's zip, decrypted (``NotFound`` when it is gone, ``EvidenceTamperedError``
    when it does not authenticate). The caller audits the read."""
    from .services import EvidenceTamperedError

    if not export.object_name or export.wrapped_key is None:
        raise NotFound("This export has no file.", code="export_missing")
    try:
        ciphertext = storage.read_object(export.object_name)
    except FileNotFoundError:
        raise NotFound("This export's file is gone.", code="export_missing") from None
    try:
        return crypto.open_sample(
            ciphertext,
            bytes(export.wrapped_key),
            master=settings.EVIDENCE_MASTER_KEY,
            organization_id=export.organization_id,
            sample_id=_export_key_id(export),
        )
    except crypto.EvidenceTampered:
        raise EvidenceTamperedError(
            "This export failed its integrity check; it is not served.", code="export_tampered"
        ) from None
