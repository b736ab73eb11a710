"""The evidence sample's and the export's state machines: the only code that assigns ``status``."""

from __future__ import annotations

from django.db.models import QuerySet

from opshero.errors import Conflict

from .models import EvidenceSample, LabelledExport

S = EvidenceSample.Status
E = LabelledExport.Status

SAMPLE_TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.LINKED, S.UNMATCHED, S.DELETED},
    S.LINKED: {S.REVIEWED, S.DELETED},
    S.REVIEWED: {S.DELETED},
    S.UNMATCHED: set(),
    S.DELETED: set(),
}

EXPORT_TRANSITIONS: dict[str, set[str]] = {
    E.BUILDING: {E.READY, E.FAILED},
    E.READY: set(),
    E.FAILED: set(),
}


def transition_sample(sample: EvidenceSample, to: str) -> None:
    """Move one sample (the caller saves it in its transaction)."""
    if to not in SAMPLE_TRANSITIONS[sample.status]:
        raise Conflict(
            f"Evidence {sample.pk} is {sample.get_status_display().lower()}; it cannot become "
            f"{S(to).label.lower()}.",
            code="evidence_state",
        )
    sample.status = to


def transition_samples(
    queryset: QuerySet[EvidenceSample], *, source: str, to: str, **fields
) -> int:
    """Move every sample of ``queryset`` that is in ``source`` to ``to`` in one UPDATE."""
    if to not in SAMPLE_TRANSITIONS[source]:
        raise Conflict(f"Evidence cannot go from {source} to {to}.", code="evidence_state")
    return queryset.filter(status=source).update(status=to, **fields)


def transition_export(export: LabelledExport, to: str) -> None:
    if to not in EXPORT_TRANSITIONS[export.status]:
        raise Conflict(f"Export {export.pk} is {export.status}; not {to}.", code="export_state")
    export.status = to
