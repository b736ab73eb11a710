"""Audit verbs of review: every view and download of evidence, every review, export and deletion."""

from __future__ import annotations

from opshero.audit import AuditVerb


class ReviewVerb(AuditVerb):
    """What ``review.services`` records; values are stored as they are."""

    EVIDENCE_VIEWED = "evidence.viewed"
    EVIDENCE_DOWNLOADED = "evidence.downloaded"
    EVIDENCE_REVIEWED = "evidence.reviewed"
    EVIDENCE_DELETED = "evidence.deleted"
    EVIDENCE_SETTINGS_CHANGED = "evidence.settings_changed"
    EXPORT_CREATED = "evidence.export_created"
    EXPORT_DOWNLOADED = "evidence.export_downloaded"
