"""Audit verbs of the model registry: models, versions, validation runs, signing."""

from __future__ import annotations

from opshero.audit import AuditVerb


class RegistryVerb(AuditVerb):
    """What ``modelregistry.services`` and ``modelregistry.signing_services`` record; values
    are stored as they are."""

    MODEL_CREATED = "model.created"
    MODEL_UPDATED = "model.updated"
    MODEL_VERSION_UPLOADED = "model_version.uploaded"
    MODEL_VERSION_SIGNED = "model_version.signed"
    MODEL_VERSION_RETIRED = "model_version.retired"
    VALIDATION_REQUESTED = "validation.requested"
    VALIDATION_FINISHED = "validation.finished"
    VALIDATION_REVIEWED = "validation.reviewed"
    SIGNING_KEY_CREATED = "signing_key.created"
    SIGNING_KEY_ROTATED_OUT = "signing_key.rotated_out"
    SIGNING_KEY_RETIRED = "signing_key.retired"
    MODEL_SIGNATURE_REISSUED = "model_signature.reissued"
    ASSIGNMENT_CHANGED = "assignment.changed"
    ASSIGNMENT_REMOVED = "assignment.removed"
