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
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict
from opshero.models import Organization
from opshero.services import record_audit_event
from protocol import manifest

from .audit import RegistryVerb
from .models import (
    DeviceAssignment,
    MlModel,
    ModelSignature,
    ModelVersion,
    SigningKey,
    ValidationRun,
)
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


def _evidence_digest(passed) -> str:
    runs = sorted(passed, key=lambda run: run.target.name)
    return _digest([[run.target.name, run.report_digest] for run in runs])


def validation_evidence_digest(version: ModelVersion) -> str:
    """SHA-256 over the targets whose newest validation passed, each with its report digest:
    re-validating a version (a new report, a target that now fails) changes it."""
    return _evidence_digest(passed_targets(version))


def approval_pins_many(versions: Iterable[ModelVersion]) -> dict[int, dict | None]:
    """{version id: what an approval of it would be pinned to now} (None: no live signature),
    in two queries whatever the number of versions: the artifact digest, the live signature's
    manifest content digest and the validation evidence digest."""
    versions = list(versions)
    ids = [version.pk for version in versions]
    latest: dict[tuple[int, int], ValidationRun] = {}
    for run in (
        ValidationRun.objects.filter(version_id__in=ids, finished_at__isnull=False)
        .select_related("target")
        .order_by("finished_at", "pk")
    ):
        latest[(run.version_id, run.target_id)] = run
    signatures = live_signatures(ids)
    pins: dict[int, dict | None] = {}
    for version in versions:
        signature = signatures.get(version.pk)
        if signature is None:
            pins[version.pk] = None
            continue
        passed = [
            run
            for (version_id, _), run in latest.items()
            if version_id == version.pk and run.status == ValidationRun.Status.PASSED
        ]
        pins[version.pk] = {
            "artifact_sha256": version.sha256,
            "manifest_digest": manifest_content_digest(signature),
            "evidence_digest": _evidence_digest(passed),
            "signature_id": signature.approved_signature.pk,
        }
    return pins


def _live(version_ids: Iterable[int], now: datetime | None):
    return ModelSignature.objects.filter(
        version_id__in=list(version_ids),
        key__status=SigningKey.Status.ACTIVE,
        expires_at__gt=now or timezone.now(),
    ).order_by("version_id", "-release_counter", "-pk")


def live_signature_ids(
    version_ids: Iterable[int], *, now: datetime | None = None
) -> dict[int, tuple[int, int]]:
    """{version id: (signature id, release counter)} of each version's live signature, in one
    query (DISTINCT ON where the database has it): what the device API's ETag is made of."""
    query = _live(version_ids, now).values_list("version_id", "pk", "release_counter")
    if connection.features.can_distinct_on_fields:
        return {version: (pk, counter) for version, pk, counter in query.distinct("version_id")}
    found: dict[int, tuple[int, int]] = {}
    for version, pk, counter in query:
        found.setdefault(version, (pk, counter))
    return found


def live_signatures(
    version_ids: Iterable[int], *, now: datetime | None = None
) -> dict[int, ModelSignature]:
    """{version id: the signature devices get}: the highest release counter, then the newest,
    among signatures made with an active key that have not expired. One query."""
    query = _live(version_ids, now).select_related("key", "reissue_of", "signed_by")
    if connection.features.can_distinct_on_fields:
        return {signature.version_id: signature for signature in query.distinct("version_id")}
    found: dict[int, ModelSignature] = {}
    for signature in query:
        found.setdefault(signature.version_id, signature)
    return found


def live_signature(version: ModelVersion) -> ModelSignature | None:
    """The signature devices get for ``version`` (see ``live_signatures``)."""
    return live_signatures([version.pk]).get(version.pk)


@transaction.atomic
def reissue_signature(*, version: ModelVersion, actor: Actor, reason: str) -> ModelSignature:
    """A new manifest for an already signed version with the model's next release counter,
    signed by the system with the active key (rollback under anti-rollback).

    Refused when the version is not signed any more (retired) or when the organisation has no
    active key. An expired signature can be re-issued: its content was approved."""
    version = ModelVersion.objects.select_related("model__organization").get(pk=version.pk)
    if version.status != ModelVersion.Status.SIGNED:
        raise Conflict(
            f"{version.model.name} {version.version} is {version.get_status_display().lower()};"
            " only a signed version can be re-issued.",
            code="not_signed",
        )
    # The newest signature of the version, live or not: what a re-issue vouches for is the
    # approved content (artifact, evidence, contract), which an expired envelope or a rotated-out
    # key does not change; the re-issue gets a fresh validity and the active key.
    source = live_signature(version) or (
        version.signatures.select_related("reissue_of").order_by("-release_counter", "-pk").first()
    )
    if source is None:
        raise Conflict(
            f"{version.model.name} {version.version} was never signed; there is nothing to "
            "re-issue.",
            code="never_signed",
        )
    organization = version.model.organization
    key = SigningKey.objects.filter(
        organization=organization, status=SigningKey.Status.ACTIVE
    ).first()
    if key is None:
        raise Conflict(
            "The organisation has no active signing key; an admin creates one under Models → "
            "Signing keys.",
            code="no_signing_key",
        )
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
    if connection.vendor == "postgresql":
        _upsert_postgresql(
            organization=organization,
            model=model,
            version=version,
            ids=ids,
            now=now,
            purpose=purpose,
            rollout_id=rollout_id,
            action_ids=action_ids,
            previous=previous,
        )
    else:
        _upsert_orm(
            organization=organization,
            model=model,
            version=version,
            ids=ids,
            now=now,
            purpose=purpose,
            rollout_id=rollout_id,
            action_ids=action_ids,
            previous=previous,
        )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.ASSIGNMENT_CHANGED,
        target=version,
        target_label=f"{model.name} {version.version}",
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


# One statement on PostgreSQL whatever the number of devices (a wave of 5,000 is one INSERT ...
# ON CONFLICT over arrays, not 5,000 model objects); the ORM elsewhere (SQLite, `make run`).
_UPSERT = """
INSERT INTO modelregistry_deviceassignment
    (organization_id, device_id, model_id, version_id, previous_version_id, rollout_id,
     action_id, purpose, since, updated_at)
SELECT %(org)s, u.device_id, %(model)s, %(version)s, u.previous, %(rollout)s, u.action_id,
       %(purpose)s, %(now)s, %(now)s
FROM unnest(%(ids)s::bigint[], %(actions)s::bigint[], %(previous)s::bigint[])
     AS u(device_id, action_id, previous)
ON CONFLICT (device_id, model_id) DO UPDATE SET
    previous_version_id = CASE
        WHEN %(explicit)s THEN EXCLUDED.previous_version_id
        WHEN modelregistry_deviceassignment.version_id <> EXCLUDED.version_id
            THEN modelregistry_deviceassignment.version_id
        ELSE modelregistry_deviceassignment.previous_version_id
    END,
    version_id = EXCLUDED.version_id,
    rollout_id = EXCLUDED.rollout_id,
    action_id = EXCLUDED.action_id,
    purpose = EXCLUDED.purpose,
    since = EXCLUDED.since,
    updated_at = EXCLUDED.updated_at
"""


def _upsert_postgresql(
    *, organization, model, version, ids, now, purpose, rollout_id, action_ids, previous
) -> None:
    actions = action_ids or {}
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            {
                "org": organization.pk,
                "model": model.pk,
                "version": version.pk,
                "rollout": rollout_id,
                "purpose": purpose,
                "now": now,
                "ids": ids,
                "actions": [actions.get(device_id) for device_id in ids],
                "previous": [(previous or {}).get(device_id) for device_id in ids],
                "explicit": previous is not None,
            },
        )


def _upsert_orm(
    *, organization, model, version, ids, now, purpose, rollout_id, action_ids, previous
) -> None:
    current = dict(
        DeviceAssignment.objects.filter(model=model, device_id__in=ids).values_list(
            "device_id", "version_id"
        )
    )
    fallbacks = dict(
        DeviceAssignment.objects.filter(model=model, device_id__in=ids).values_list(
            "device_id", "previous_version_id"
        )
    )
    rows = []
    for device_id in ids:
        before = current.get(device_id)
        if previous is not None:
            fallback = previous.get(device_id)
        elif before is not None and before != version.pk:
            fallback = before
        else:
            fallback = fallbacks.get(device_id)
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
        batch_size=500,
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
