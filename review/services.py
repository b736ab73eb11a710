"""Review writes: evidence arrives, is linked to its event, reviewed, deleted on schedule.

Every sample is encrypted before it touches the disk (``review.crypto``, one data key a sample)
and every read of its bytes is audited. Retention deletes the object *and* its wrapped key and
records the run (``EvidenceDeletionRun``): the deletion report.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from fleet.models import Device, Site
from fleet.selectors import effective_policy
from modelregistry.models import ModelVersion
from opshero.actors import Actor
from opshero.errors import Conflict, DomainError, InvalidInput, NotFound
from opshero.models import Organization
from opshero.services import record_audit_event
from protocol import evidence as wire
from telemetry.models import DataSent
from telemetry.selectors import awaiting_ingest
from telemetry.services import record_data_sent

from . import crypto, storage
from .audit import ReviewVerb
from .models import EvidenceDeletionRun, EvidenceSample, EvidenceSettings, Review
from .selectors import class_names_for, evidence_settings_for, find_inference_events
from .transitions import transition_sample, transition_samples

log = logging.getLogger(__name__)
S = EvidenceSample.Status

MAX_REVIEW_REASON_CHARS = 500


class EvidenceRefusedError(DomainError):
    """A sample refused as a whole, with the status and code of ``protocol.evidence``."""

    def __init__(self, code: str, status: int, message: str, *, retry_after: int | None = None):
        super().__init__(message, code=code)
        self.http_status = status
        self.retry_after = retry_after

    @property
    def status(self) -> int:  # the HTTP status the API answers with (DomainError's contract)
        return self.http_status


def _refused(exc: wire.EvidenceRefused) -> EvidenceRefusedError:
    return EvidenceRefusedError(exc.code, exc.status, exc.message)


# --- arrival ------------------------------------------------------------------------------------


def check_image(body: bytes, media: str) -> tuple[int, int]:
    """The image's (width, height) once it decodes as what it claims, or a refusal.

    The pixel count is checked before any pixel is decoded (a decompression bomb is refused,
    not inflated); then the whole image is decoded once, so a truncated file is refused too.
    """
    from PIL import Image, UnidentifiedImageError

    expected = {"image/png": "PNG", "image/jpeg": "JPEG"}[media]
    try:
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
            if image.format != expected:
                raise EvidenceRefusedError(
                    "content_mismatch", 422, f"The image is {image.format}, not {expected}."
                )
            if width * height > wire.MAX_IMAGE_PIXELS:
                raise EvidenceRefusedError(
                    "invalid_image",
                    422,
                    f"The image is {width}x{height} pixels; at most {wire.MAX_IMAGE_PIXELS} "
                    "pixels are accepted.",
                )
            image.verify()  # chunk checksums and structure, before anything is decoded
        with Image.open(io.BytesIO(body)) as image:
            image.load()  # every pixel decodes: a truncated stream is refused too
    except EvidenceRefusedError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise EvidenceRefusedError(
            "invalid_image", 422, f"The image does not decode: {exc}"
        ) from None
    except Image.DecompressionBombError as exc:
        raise EvidenceRefusedError("invalid_image", 422, str(exc)) from None
    return width, height


def retention_for(*, organization: Organization, site_kind: str) -> timedelta:
    current = evidence_settings_for(org=organization)
    days = (
        current.clinic_retention_days if site_kind == Site.Kind.CLINIC else current.retention_days
    )
    return timedelta(days=days)


def _next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class Receipt:
    sample: EvidenceSample
    created: bool

    def as_json(self) -> dict[str, Any]:
        return {"evidence": str(self.sample.pk), "status": self.sample.status}


def receive_evidence(
    *,
    device: Device,
    body: bytes,
    content_type: str,
    query: str,
    now: datetime | None = None,
) -> Receipt:
    """Check, encrypt and store one sample a device sent, linked to its event if it is here.

    Refuses (``EvidenceRefusedError``, nothing stored) a bad reference, a type or size outside
    the limits, bytes that are not what they claim, a site policy that sends no evidence (or no
    images), an epoch that is another device's, an event that is not an inference, a different
    sample for an event that already has one, and samples beyond the device's daily cap. The
    same sample sent again is answered as the first time (a retry after a lost answer).
    """
    now = now or timezone.now()
    record_data_sent(
        organization_id=device.organization_id,
        site_id=device.site_id,
        kind=DataSent.Kind.EVIDENCE,
        records=1,
        size=len(body),
        day=now.astimezone(UTC).date(),
    )
    try:
        ref = wire.parse_reference(query)
        media = wire.check_sample(content_type=content_type, body=body)
    except wire.EvidenceRefused as exc:
        raise _refused(exc) from None
    policy = effective_policy(device=device)
    if policy.evidence_daily_cap == 0:
        raise EvidenceRefusedError(
            "evidence_disabled",
            403,
            "This site's policy sends no evidence (its daily cap is 0).",
        )
    if media != wire.JSON and not policy.image_evidence:
        raise EvidenceRefusedError(
            "image_evidence_disabled",
            403,
            "This site's policy keeps images on site: send JSON evidence only.",
        )
    if media != wire.JSON:  # decoded only once the policy says the site may send it
        check_image(body, media)
    digest = hashlib.sha256(body).hexdigest()

    existing = EvidenceSample.objects.filter(
        device=device, epoch=ref.epoch, sequence=ref.sequence
    ).first()
    if existing is not None:
        return _same_or_conflict(existing, digest)

    events = find_inference_events(device=device, refs=[(ref.epoch, ref.sequence)])
    found = events.get((ref.epoch, ref.sequence))
    if found is not None and found.kind != "inference":
        raise EvidenceRefusedError(
            "event_not_found",
            404,
            f"Event {ref.epoch}/{ref.sequence} of this device is a {found.kind} event, "
            "not an inference.",
        )
    if found is None and events.foreign_epochs:
        raise EvidenceRefusedError(
            "event_not_found",
            404,
            f"Epoch {ref.epoch} is not one of this device's: no such inference event.",
        )

    sample_id = EvidenceSample._meta.get_field("id").default()
    sealed = crypto.seal(
        body,
        master=settings.EVIDENCE_MASTER_KEY,
        organization_id=device.organization_id,
        sample_id=str(sample_id),
    )
    object_name = storage.sample_object_name(
        organization_id=device.organization_id, sample_id=str(sample_id)
    )
    site = device.site
    try:
        with transaction.atomic():
            # One device's uploads one at a time: the daily cap holds under concurrency.
            Device.objects.select_for_update().filter(pk=device.pk).first()
            day_start = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
            today = EvidenceSample.objects.filter(device=device, received_at__gte=day_start).count()
            if today >= policy.evidence_daily_cap:
                midnight = _next_utc_midnight(now)
                raise EvidenceRefusedError(
                    "evidence_cap",
                    429,
                    f"This device sent its {policy.evidence_daily_cap} samples for today "
                    f"(UTC); send again after {midnight.isoformat()}.",
                    retry_after=max(1, int((midnight - now).total_seconds())),
                )
            storage.write_object(object_name, sealed.ciphertext)
            sample = EvidenceSample(
                id=sample_id,
                organization_id=device.organization_id,
                site=site,
                device=device,
                epoch=ref.epoch,
                sequence=ref.sequence,
                reason=ref.reason,
                media_type=media,
                size_bytes=len(body),
                sha256=digest,
                object_name=object_name,
                wrapped_key=sealed.wrapped_key,
                key_version=sealed.key_version,
                site_kind=site.kind,
                received_at=now,
                delete_after=now
                + retention_for(organization=device.organization, site_kind=site.kind),
            )
            if found is not None:
                _link(sample, found, now=now)
            sample.save(force_insert=True)
    except IntegrityError:
        # The same event's sample arrived twice at once: the other one is stored.
        storage.delete_object(object_name)
        existing = EvidenceSample.objects.get(device=device, epoch=ref.epoch, sequence=ref.sequence)
        return _same_or_conflict(existing, digest)
    except BaseException:
        storage.delete_object(object_name)
        raise
    return Receipt(sample=sample, created=True)


def _same_or_conflict(existing: EvidenceSample, digest: str) -> Receipt:
    if existing.sha256 == digest:
        return Receipt(sample=existing, created=False)
    raise EvidenceRefusedError(
        "evidence_conflict",
        409,
        f"A different sample is already stored for event {existing.epoch}/{existing.sequence} "
        f"(received {existing.received_at.isoformat()}).",
    )


def _version_for(organization_id: int, sha256: str, name: str, label: str) -> ModelVersion | None:
    versions = ModelVersion.objects.filter(model__organization_id=organization_id)
    return (
        versions.filter(sha256=sha256).first()
        or versions.filter(model__name=name, version=label).first()
    )


def _link(sample: EvidenceSample, event, *, now: datetime) -> None:
    """Copy the event's figures onto the sample and move it to the review queue."""
    transition_sample(sample, S.LINKED)
    sample.event_epoch_id = event.epoch_id
    sample.event_timestamp = event.timestamp
    sample.linked_at = now
    sample.model_name = event.model_name
    sample.model_version_label = event.model_version
    sample.model_sha256 = event.model_sha256
    sample.predicted_class = event.predicted_class
    sample.confidence = event.confidence
    sample.model_version = _version_for(
        sample.organization_id, event.model_sha256, event.model_name, event.model_version
    )


def link_pending_evidence(
    *,
    now: datetime | None = None,
    limit: int = 2000,
    max_pages: int | None = None,
    budget_s: float = 20.0,
) -> dict[str, int]:
    """Link pending samples whose events have landed; refuse (delete) those still unmatched after
    ``protocol.evidence.LINK_WINDOW_HOURS``. Run by beat; safe to run twice at once.

    Walks every pending sample, oldest first, ``limit`` at a time (keyset pages), until they are
    all looked at, ``max_pages`` pages or ``budget_s`` seconds: samples that never match cannot
    hold up newer ones whose events have arrived.
    """
    now = now or timezone.now()
    started = time.monotonic()
    totals = {"linked": 0, "unmatched": 0}
    after: tuple[datetime, Any] | None = None
    pages = 0
    while True:
        page = EvidenceSample.objects.filter(status=S.PENDING).select_related("device")
        if after is not None:
            page = page.filter(
                Q(received_at__gt=after[0]) | Q(received_at=after[0], pk__gt=after[1])
            )
        pending = list(page.order_by("received_at", "pk")[:limit])
        if not pending:
            break
        outcome = _link_page(pending, now=now)
        totals["linked"] += outcome["linked"]
        totals["unmatched"] += outcome["unmatched"]
        pages += 1
        after = (pending[-1].received_at, pending[-1].pk)
        if len(pending) < limit or (max_pages is not None and pages >= max_pages):
            break
        if time.monotonic() - started > budget_s:
            break
    return totals


def _link_page(pending: list[EvidenceSample], *, now: datetime) -> dict[str, int]:
    by_device: dict[int, list[EvidenceSample]] = {}
    for sample in pending:
        by_device.setdefault(sample.device_id, []).append(sample)
    linked = 0
    for samples in by_device.values():
        device = samples[0].device
        events = find_inference_events(device=device, refs=[(s.epoch, s.sequence) for s in samples])
        for sample in samples:
            found = events.get((sample.epoch, sample.sequence))
            if found is None or found.kind != "inference":
                continue
            with transaction.atomic():
                fresh = EvidenceSample.objects.select_for_update().filter(pk=sample.pk).first()
                if fresh is None or fresh.status != S.PENDING:
                    continue
                _link(fresh, found, now=now)
                fresh.save()
                linked += 1
    cutoff = now - timedelta(hours=wire.LINK_WINDOW_HOURS)
    # Only samples looked up just now (and still unmatched) may be refused. A sample whose
    # event sits in a landed batch no worker has expanded yet (an ingest outage) waits on.
    overdue = [s for s in pending if s.received_at < cutoff]
    waiting: set[tuple[int, str, int]] = set()
    for device_id in {s.device_id for s in overdue}:
        refs = [(s.epoch, s.sequence) for s in overdue if s.device_id == device_id]
        waiting |= {
            (device_id, epoch, sequence)
            for epoch, sequence in awaiting_ingest(device_id=device_id, refs=refs)
        }
    stale = EvidenceSample.objects.filter(
        status=S.PENDING,
        pk__in=[s.pk for s in overdue if (s.device_id, s.epoch, s.sequence) not in waiting],
    )
    unmatched = _delete_samples(stale, cause=EvidenceDeletionRun.Cause.UNMATCHED, now=now)
    return {"linked": linked, "unmatched": unmatched}


# --- retention ----------------------------------------------------------------------------------


def _delete_samples(queryset, *, cause: str, now: datetime) -> int:
    """Delete objects and keys of the samples in ``queryset``, one run per organisation."""
    target = S.UNMATCHED if cause == EvidenceDeletionRun.Cause.UNMATCHED else S.DELETED
    total = 0
    rows = list(
        queryset.values_list("pk", "organization_id", "object_name", "size_bytes", "received_at")
    )
    by_org: dict[int, list[tuple]] = {}
    for row in rows:
        by_org.setdefault(row[1], []).append(row)
    for organization_id, members in by_org.items():
        with transaction.atomic():
            run = EvidenceDeletionRun.objects.create(
                organization_id=organization_id,
                cause=cause,
                ran_at=now,
                samples=0,
                bytes=0,
                oldest_received_at=min(m[4] for m in members),
                newest_received_at=max(m[4] for m in members),
            )
            ids = [m[0] for m in members]
            moved = 0
            for source in (
                [S.PENDING] if target == S.UNMATCHED else [S.PENDING, S.LINKED, S.REVIEWED]
            ):
                moved += transition_samples(
                    EvidenceSample.objects.filter(pk__in=ids),
                    source=source,
                    to=target,
                    wrapped_key=None,
                    deleted_at=now,
                    deletion_run=run,
                )
            deleted = EvidenceSample.objects.filter(deletion_run=run)
            # What a reviewer typed may name people: it goes with the evidence. The verdict and
            # the classes stay (accuracy over time needs them, and they name no one).
            Review.objects.filter(sample__deletion_run=run).exclude(reason="").update(reason="")
            run.samples = moved
            run.bytes = sum(size for size in deleted.values_list("size_bytes", flat=True))
            run.save(update_fields=["samples", "bytes"])
            _audit_deletion(organization_id, run, cause, moved)
            names = list(deleted.values_list("object_name", flat=True))
            # The keys are gone once this commits; the objects go right after (a crash between
            # leaves ciphertext nobody can open, which ``sweep_deleted_objects`` removes on the
            # next retention pass).
            transaction.on_commit(lambda names=names: [storage.delete_object(n) for n in names])
        total += moved
    return total


def _audit_deletion(organization_id: int, run: EvidenceDeletionRun, cause: str, moved: int):
    record_audit_event(
        organization=Organization.objects.get(pk=organization_id),
        actor=Actor.system("evidence retention"),
        verb=ReviewVerb.EVIDENCE_DELETED,
        target_type="evidence_deletion_run",
        target_id=str(run.pk),
        target_label=str(run),
        data={"cause": cause, "samples": moved, "bytes": run.bytes},
    )


def apply_evidence_retention(*, now: datetime | None = None) -> int:
    """Delete every sample past its organisation's retention (object and key). Run by beat."""
    now = now or timezone.now()
    due = EvidenceSample.objects.filter(
        status__in=[S.PENDING, S.LINKED, S.REVIEWED], delete_after__lte=now
    )
    deleted = _delete_samples(due, cause=EvidenceDeletionRun.Cause.RETENTION, now=now)
    sweep_deleted_objects(now=now)
    return deleted


def sweep_deleted_objects(*, now: datetime, days: int = 2) -> int:
    """Remove the objects of samples deleted in the last ``days`` that are still on disk (their
    keys went at commit; the unlink after it may have been lost to a crash). Idempotent."""
    names = EvidenceSample.objects.filter(
        status__in=[S.DELETED, S.UNMATCHED], deleted_at__gte=now - timedelta(days=days)
    ).values_list("object_name", flat=True)
    return sum(1 for name in names.iterator() if storage.delete_object(name))


@transaction.atomic
def set_evidence_settings(
    *, organization: Organization, actor: Actor, retention_days: int, clinic_retention_days: int
) -> EvidenceSettings:
    """Change the retention schedule; samples still held get their new deletion time now."""
    errors: dict[str, list[str]] = {}
    for name, value in (
        ("retention_days", retention_days),
        ("clinic_retention_days", clinic_retention_days),
    ):
        if not isinstance(value, int) or not 1 <= value <= 3650:
            errors[name] = ["A whole number of days from 1 to 3650."]
    if not errors and clinic_retention_days > retention_days:
        errors["clinic_retention_days"] = [
            "A clinic keeps evidence no longer than other sites (the strictest policy)."
        ]
    if errors:
        raise InvalidInput("The retention schedule is not valid.", fields=errors)
    current = evidence_settings_for(org=organization)
    before = {
        "retention_days": current.retention_days,
        "clinic_retention_days": current.clinic_retention_days,
    }
    current.retention_days = retention_days
    current.clinic_retention_days = clinic_retention_days
    current.updated_by = actor.user
    current.updated_at = timezone.now()
    current.save()
    held = EvidenceSample.objects.filter(
        organization=organization, status__in=[S.PENDING, S.LINKED, S.REVIEWED]
    )
    held.exclude(site_kind=Site.Kind.CLINIC).update(
        delete_after=F("received_at") + timedelta(days=retention_days)
    )
    held.filter(site_kind=Site.Kind.CLINIC).update(
        delete_after=F("received_at") + timedelta(days=clinic_retention_days)
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=ReviewVerb.EVIDENCE_SETTINGS_CHANGED,
        target=current,
        data={
            "before": before,
            "after": {
                "retention_days": retention_days,
                "clinic_retention_days": clinic_retention_days,
            },
        },
    )
    return current


# --- reading and reviewing ------------------------------------------------------------------------


def read_evidence(*, sample: EvidenceSample, actor: Actor, download: bool = False) -> bytes:
    """The sample's bytes, decrypted; every read is audited. A deleted sample is a 404; one that
    fails its integrity check is refused (``EvidenceTamperedError``) and audited as such."""
    if not sample.has_object or sample.wrapped_key is None:
        raise NotFound("This evidence was deleted.", code="evidence_deleted")
    try:
        ciphertext = storage.read_object(sample.object_name)
    except FileNotFoundError:
        raise NotFound("This evidence's object is missing.", code="evidence_missing") from None
    try:
        plaintext = crypto.open_sample(
            ciphertext,
            bytes(sample.wrapped_key),
            master=settings.EVIDENCE_MASTER_KEY,
            organization_id=sample.organization_id,
            sample_id=str(sample.pk),
            key_version=sample.key_version,
        )
    except crypto.EvidenceTampered as exc:
        log.error("evidence %s failed its integrity check: %s", sample.pk, exc)
        raise EvidenceTamperedError(
            "This evidence failed its integrity check (altered or swapped); it is not shown.",
            code="evidence_tampered",
        ) from None
    record_audit_event(
        organization=sample.organization,
        actor=actor,
        verb=ReviewVerb.EVIDENCE_DOWNLOADED if download else ReviewVerb.EVIDENCE_VIEWED,
        target_type="evidence",
        target_id=str(sample.pk),
        target_label=f"{sample.get_reason_display()} case of {sample.site.name}",
        data={"bytes": len(plaintext), "media_type": sample.media_type},
    )
    return plaintext


class EvidenceTamperedError(DomainError):
    status = 409
    code = "evidence_tampered"


@transaction.atomic
def submit_review(
    *, sample: EvidenceSample, actor: Actor, true_class: str, reason: str = ""
) -> Review:
    """Confirm the prediction (``true_class`` equal to it) or correct it, with a reason.

    Refuses a deleted sample (404), one not yet linked to its event or already reviewed (409),
    and a class that is not one of the model's (422).
    """
    locked = EvidenceSample.objects.select_for_update().filter(pk=sample.pk).first()
    if locked is None or locked.status in (S.DELETED, S.UNMATCHED):
        raise NotFound(
            "This evidence was deleted; it can no longer be reviewed.", code="evidence_deleted"
        )
    if locked.status == S.PENDING:
        raise Conflict(
            "This evidence's inference event has not arrived yet; review it once it is linked.",
            code="evidence_pending",
        )
    if locked.status == S.REVIEWED:
        raise Conflict("This evidence was already reviewed.", code="already_reviewed")
    true_class = (true_class or "").strip()
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    names = class_names_for(locked)
    if not true_class:
        errors["true_class"] = ["Choose the true class."]
    elif names and true_class not in names:
        errors["true_class"] = [f"Not a class of this model; one of: {', '.join(names)}."]
    elif len(true_class) > 200:
        errors["true_class"] = ["At most 200 characters."]
    if len(reason) > MAX_REVIEW_REASON_CHARS:
        errors["reason"] = [f"At most {MAX_REVIEW_REASON_CHARS} characters."]
    if errors:
        raise InvalidInput("The review is not valid.", fields=errors)
    verdict = (
        Review.Verdict.CONFIRMED
        if true_class == locked.predicted_class
        else Review.Verdict.CORRECTED
    )
    review = Review.objects.create(
        sample=locked,
        organization_id=locked.organization_id,
        site_id=locked.site_id,
        model_version=locked.model_version,
        model_sha256=locked.model_sha256,
        sample_reason=locked.reason,
        predicted_class=locked.predicted_class,
        confidence=locked.confidence,
        verdict=verdict,
        true_class=true_class,
        reason=reason,
        reviewer=actor.user,
        reviewed_at=timezone.now(),
    )
    transition_sample(locked, S.REVIEWED)
    locked.save(update_fields=["status"])
    record_audit_event(
        organization=locked.organization,
        actor=actor,
        verb=ReviewVerb.EVIDENCE_REVIEWED,
        target_type="evidence",
        target_id=str(locked.pk),
        target_label=f"{verdict} {locked.predicted_class} → {true_class}",
        data={
            "verdict": verdict,
            "predicted_class": locked.predicted_class,
            "true_class": true_class,
            "confidence": locked.confidence,
        },
    )
    return review
