"""Storage hygiene: variant files of superseded validation runs are deleted (beat, hourly).

A run keeps the INT8/FP16 variants it produced in storage (``variants/<org>/...``, see
``services._keep_variants``) so they can be registered as versions. Once a newer run of the
same version on the same target has finished, or the version is retired, nobody can act on
those variants any more, and they would only pile up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import ModelVersion, ValidationRun

logger = logging.getLogger(__name__)

REASON_SUPERSEDED = "superseded by a newer finished run on the same target"
REASON_RETIRED = "the version is retired"


def superseded_runs():
    """Runs with a report whose variants can no longer be used: a newer finished run exists for
    the same (version, target), or the version is retired. The latest run of a (version, target)
    of a live version is never among them."""
    newer_finished = ValidationRun.objects.filter(
        version=OuterRef("version"),
        target=OuterRef("target"),
        number__gt=OuterRef("number"),
        status__in=ValidationRun.FINISHED,
    )
    return (
        ValidationRun.objects.filter(report__isnull=False)
        .annotate(has_newer_finished=Exists(newer_finished))
        .filter(Q(has_newer_finished=True) | Q(version__status=ModelVersion.Status.RETIRED))
    )


def delete_superseded_variant_files(*, now: datetime | None = None) -> int:
    """Delete the stored variant files of superseded runs; return how many were deleted.

    Each variant keeps its record in the report with ``stored_name`` emptied (so it is no
    longer registrable) and ``deleted_at`` (``now``, default the current time) and
    ``deleted_reason`` added. Idempotent: a variant without ``stored_name`` is skipped, and a
    file already missing from storage counts as deleted.
    """
    now = now or timezone.now()
    deleted = 0
    for run_id, report in superseded_runs().values_list("pk", "report").iterator(chunk_size=200):
        if _stored_variants(report):  # runs cleaned before are skipped without a lock
            deleted += _delete_run_variant_files(run_id, now=now)
    return deleted


def _stored_variants(report: dict | None) -> list[dict]:
    """The variants of a report that still point at a stored file."""
    variants = ((step.get("data") or {}).get("variant") for step in (report or {}).get("steps", []))
    return [variant for variant in variants if variant and variant.get("stored_name")]


@transaction.atomic
def _delete_run_variant_files(run_id: int, *, now: datetime) -> int:
    """One run, under its row lock. Files are deleted before the report is saved: if storage
    fails, the transaction rolls back and the next call tries again (a file deleted before the
    failure is then missing, which counts as deleted); no file is ever orphaned."""
    run = (
        ValidationRun.objects.select_for_update(of=("self",))
        .select_related("version")
        .filter(pk=run_id)
        .first()
    )
    if run is None:  # deleted meanwhile
        return 0
    retired = run.version.status == ModelVersion.Status.RETIRED
    reason = REASON_RETIRED if retired else REASON_SUPERSEDED
    deleted = 0
    for variant in _stored_variants(run.report):
        default_storage.delete(variant["stored_name"])  # a missing name is not an error
        logger.info(
            "Deleted variant file %s of validation run %s (%s)",
            variant["stored_name"],
            run_id,
            reason,
        )
        variant["stored_name"] = ""
        variant["deleted_at"] = now.isoformat()
        variant["deleted_reason"] = reason
        deleted += 1
    if deleted:
        # report_digest is left alone on purpose: it is the digest of the report as the worker
        # produced it, which is what a signature over this run commits to. The stored report
        # carries storage bookkeeping (stored_name, deleted_at) that is not part of it.
        run.save(update_fields=["report"])
    return deleted
