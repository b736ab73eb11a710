"""Audit verbs of staged rollouts."""

from __future__ import annotations

from opshero.audit import AuditVerb


class RolloutVerb(AuditVerb):
    """What ``rollouts.services`` and ``rollouts.engine`` record; values are stored as they are."""

    ROLLOUT_CREATED = "rollout.created"
    ROLLOUT_UPDATED = "rollout.updated"
    ROLLOUT_TRANSITIONED = "rollout.transitioned"
    ROLLOUT_APPROVED = "rollout.approved"
    ROLLOUT_REJECTED = "rollout.rejected"
    ROLLOUT_APPROVAL_VOIDED = "rollout.approval_voided"
    WAVE_TRANSITIONED = "wave.transitioned"
    WAVE_ANALYSED = "wave.analysed"
    DEPLOYMENT_TRANSITIONED = "deployment.transitioned"
    ROLLBACK_STARTED = "rollback.started"
