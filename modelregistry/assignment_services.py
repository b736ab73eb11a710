"""What each device should run, and the re-issued signatures that let it go back.

Rollouts (above the registry) change assignments only through these functions. Both work
in bulk: a wave of thousands of devices is a constant number of queries, and one audit event
says what changed for how many devices (the per-device story is the rollout's actions).

Re-issue: anti-rollback means a gateway refuses any manifest whose release counter is below
the one it runs. Going back to an earlier, already human-signed version therefore needs a new
manifest for the same artifact with the model's next counter (the TUF way). The system signs
it with the organisation's active key; four-eyes governs the first signature of an artifact,
not its re-issue, and the audit log records the re-issue and the signature it derives from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict
from opshero.models import Organization
from opshero.services import record_audit_event
from protocol import manifest

from .audit import RegistryVerb
from .models import DeviceAssignment, MlModel, ModelSignature, ModelVersion, SigningKey
from .signing_services import _private_pem, passed_targets

# Manifest members that change when the same approved content is re-signed (rotation,
# re-issue) and so are left out of the digest an approval is pinned to.
_VOLATILE = {"created_at", "expires_at", "release_counter", "signing_key_id"}


def _digest(document: Any) -> str:
    return hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def manifest_content_digest(signature: ModelSignature) -> str:
    """SHA-256 of what a signature vouches for (artifact, files, targets with their report
    digests, I/O contract, waiver, four-eyes mode), without the members a re-issue or a key
    rotation changes. An approval pinned to it survives those and nothing else."""
    return _digest({k: v for k, v in signature.manifest.items() if k not in _VOLATILE})


def validation_evidence_digest(version: ModelVersion) -> str:
    """SHA-256 over the targets whose newest validation passed, each with its report digest:
    re-validating a version (a new report, a target that now fails) changes it."""
    runs = sorted(passed_targets(version), key=lambda run: run.target.name)
    return _digest([[run.target.name, run.report_digest] for run in runs])


def live_signature(version: ModelVersion) -> ModelSignature | None:
    """The signature devices get for ``version``: the highest release counter among those made
    with an active key and not expired."""
    return (
        version.signatures.filter(
            key__status=SigningKey.Status.ACTIVE, expires_at__gt=timezone.now()
        )
        .select_related("key", "reissue_of")
        .order_by("-release_counter", "-pk")
        .first()
    )


@transaction.atomic
def reissue_signature(*, version: ModelVersion, actor: Actor, reason: str) -> ModelSignature:
    """A new manifest for an already signed version with the model's next release counter,
    signed by the system with the active key (rollback under anti-rollback).

    Refused when the version is not signed any more (retired), when no live human signature
    exists to derive from, or when the organisation has no active key."""
    version = ModelVersion.objects.select_related("model__organization").get(pk=version.pk)
    if version.status != ModelVersion.Status.SIGNED:
        raise Conflict(
            f"{version.model.name} {version.version} is {version.get_status_display().lower()};"
            " only a signed version can be re-issued.",
            code="not_signed",
        )
    source = live_signature(version)
    if source is None:
        raise Conflict(
            f"{version.model.name} {version.version} has no live signature to re-issue "
            "(expired, or made with a retired key); an approver signs it again.",
            code="no_live_signature",
        )
    organization = version.model.organization
    key = SigningKey.objects.filter(
        organization=organization, status=SigningKey.Status.ACTIVE
    ).first()
    if key is None:  # live_signature found one made with an active key; this is a race
        raise Conflict("The organisation has no active signing key.", code="no_signing_key")
    model = MlModel.objects.select_for_update().get(pk=version.model_id)
    model.release_counter += 1
    model.save(update_fields=["release_counter"])
    now = timezone.now()
    data = dict(source.manifest)
    if data.get("manifest_version") == 1:
        data = manifest.upgrade_v1(data, artifact_name=version.file_name)
    expires_at = max(source.expires_at, now + settings.REISSUE_MIN_VALIDITY)
    data.update(
        created_at=manifest.format_rfc3339(now),
        expires_at=manifest.format_rfc3339(expires_at),
        release_counter=model.release_counter,
        signing_key_id=key.key_id,
    )
    renewed = manifest.ModelManifest.from_dict(data)
    approved = source.approved_signature
    signature = ModelSignature.objects.create(
        version=version,
        key=key,
        release_counter=model.release_counter,
        manifest=renewed.to_dict(),
        envelope=manifest.sign_manifest(
            manifest=renewed, private_key_pem=_private_pem(key), artifact_name=version.file_name
        ).decode(),
        expires_at=expires_at,
        signed_by=None,
        accuracy_waiver=approved.accuracy_waiver,
        four_eyes_relaxed=approved.four_eyes_relaxed,
        reissue_of=approved,
        reissue_reason=reason[:200],
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.MODEL_SIGNATURE_REISSUED,
        target=version,
        data={
            "release_counter": model.release_counter,
            "reissue_of": approved.pk,
            "reissue_of_release_counter": approved.release_counter,
            "key_id": key.key_id,
            "sha256": version.sha256,
            "reason": reason[:200],
        },
    )
    return signature


def _require_same_model(model: MlModel, version: ModelVersion | None) -> None:
    if version is not None and version.model_id != model.pk:
        raise Conflict("The version belongs to another model.", code="wrong_model")


@transaction.atomic
def assign_version(
    *,
    organization: Organization,
    model: MlModel,
    version: ModelVersion,
    device_ids: Iterable[int],
    actor: Actor,
    purpose: str = "install",
    rollout_id: int | None = None,
    action_ids: Mapping[int, int] | None = None,
    previous: Mapping[int, int | None] | None = None,
) -> int:
    """Make ``version`` what the devices should run of ``model``; returns how many rows.

    The version the device ran before becomes its fallback (``previous_version``), unless
    ``previous`` names it per device (a rollback keeps the original fallback chain short).
    ``action_ids`` are the rollout's deployment actions the devices report against."""
    _require_same_model(model, version)
    ids = sorted(set(device_ids))
    if not ids:
        return 0
    now = timezone.now()
    current = dict(
        DeviceAssignment.objects.filter(model=model, device_id__in=ids).values_list(
            "device_id", "version_id"
        )
    )
    rows = []
    for device_id in ids:
        before = current.get(device_id)
        if previous is not None and device_id in previous:
            fallback = previous[device_id]
        else:
            fallback = before if before != version.pk else None
        rows.append(
            DeviceAssignment(
                organization=organization,
                device_id=device_id,
                model=model,
                version=version,
                previous_version_id=fallback,
                rollout_id=rollout_id,
                action_id=(action_ids or {}).get(device_id),
                purpose=purpose,
                since=now,
                updated_at=now,
            )
        )
    DeviceAssignment.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["device", "model"],
        update_fields=[
            "version",
            "previous_version",
            "rollout_id",
            "action_id",
            "purpose",
            "since",
            "updated_at",
        ],
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.ASSIGNMENT_CHANGED,
        target=version,
        data={
            "model": model.name,
            "version": version.version,
            "devices": len(ids),
            "purpose": purpose,
            "rollout": rollout_id,
            "sample_device_ids": ids[:20],
        },
    )
    return len(ids)


@transaction.atomic
def unassign_model(
    *,
    organization: Organization,
    model: MlModel,
    device_ids: Iterable[int],
    actor: Actor,
    rollout_id: int | None = None,
) -> int:
    """The devices should run nothing of ``model`` (rolling back a model's first rollout)."""
    ids = sorted(set(device_ids))
    deleted, _ = DeviceAssignment.objects.filter(model=model, device_id__in=ids).delete()
    if deleted:
        record_audit_event(
            organization=organization,
            actor=actor,
            verb=RegistryVerb.ASSIGNMENT_REMOVED,
            target=model,
            data={"devices": deleted, "rollout": rollout_id, "sample_device_ids": ids[:20]},
        )
    return deleted
