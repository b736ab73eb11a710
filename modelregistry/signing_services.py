"""Organisation signing keys and model signatures.

Private keys are generated here, encrypted at once with ``SIGNING_MASTER_KEY``
(``protocol.keystore``: AES-256-GCM, key id as associated data) and never returned. A
signature covers the manifest defined in ``protocol.manifest``: artifact digest and size,
the targets the version passed on, its input schema, the digest of the validation report,
validity period and the model's next release counter.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden
from opshero.models import Organization
from opshero.roles import Action, role_can
from opshero.services import record_audit_event
from protocol import keystore, manifest

from .audit import RegistryVerb
from .models import MlModel, ModelSignature, ModelVersion, SigningKey, ValidationRun
from .services import transition_version

# --- the signing key state machine ----------------------------------------------------------------

KEY_TRANSITIONS: dict[str, set[str]] = {
    SigningKey.Status.ACTIVE: {SigningKey.Status.RETIRED},
    SigningKey.Status.RETIRED: set(),  # for good: its signatures stop verifying
}


def transition_signing_key(*, key: SigningKey, to: str, **changes: Any) -> SigningKey:
    """The only place a signing key's status changes; refuses transitions the machine lacks.

    ``changes`` are other fields of the key (``retired_at``) saved with the status.
    """
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in KEY_TRANSITIONS[key.status]:
        raise Conflict(
            f"Signing key {key.key_id[:16]}… is {key.get_status_display().lower()}; it cannot "
            f"become {SigningKey.Status(to).label.lower()}.",
            code="invalid_transition",
        )
    for name, value in changes.items():
        setattr(key, name, value)
    key.status = to
    key.save(update_fields=["status", *changes])
    return key


# --- keys -----------------------------------------------------------------------------------------


def _new_key(organization: Organization, actor: Actor) -> SigningKey:
    private_pem, public_pem = manifest.generate_signing_key()
    key = SigningKey.objects.create(
        organization=organization,
        key_id=manifest.key_id(public_pem),
        public_pem=public_pem.decode("ascii"),
        private_key_encrypted=keystore.encrypt_private_key(
            private_pem, master_key=settings.SIGNING_MASTER_KEY
        ),
        created_by=actor.user,
    )
    del private_pem
    return key


def _private_pem(key: SigningKey) -> bytes:
    return keystore.decrypt_private_key(
        bytes(key.private_key_encrypted), master_key=settings.SIGNING_MASTER_KEY, key_id=key.key_id
    )


@transaction.atomic
def create_signing_key(*, organization: Organization, actor: Actor) -> SigningKey:
    """The organisation's first signing key; later ones come from rotation."""
    if (
        SigningKey.objects.select_for_update()
        .filter(organization=organization, status=SigningKey.Status.ACTIVE)
        .exists()
    ):
        raise Conflict(
            "The organisation already has an active signing key; rotate it instead.",
            code="active_key_exists",
        )
    key = _new_key(organization, actor)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.SIGNING_KEY_CREATED,
        target=key,
        target_label=f"key {key.key_id[:16]}…",
        data={"key_id": key.key_id},
    )
    return key


def _retire(key: SigningKey, actor: Actor, verb: RegistryVerb) -> None:
    transition_signing_key(key=key, to=SigningKey.Status.RETIRED, retired_at=timezone.now())
    record_audit_event(
        organization=key.organization,
        actor=actor,
        verb=verb,
        target=key,
        target_label=f"key {key.key_id[:16]}…",
        data={"key_id": key.key_id},
    )


@transaction.atomic
def rotate_signing_key(*, organization: Organization, actor: Actor) -> SigningKey:
    """New key; every live signature is re-signed with it (same release counter and expiry)
    before the old key is retired, so installed models keep verifying on gateways that
    fetch the new envelopes."""
    old = (
        SigningKey.objects.select_for_update()
        .filter(organization=organization, status=SigningKey.Status.ACTIVE)
        .first()
    )
    if old is None:
        raise Conflict("There is no active key to rotate; create one.", code="no_active_key")
    _retire(old, actor, RegistryVerb.SIGNING_KEY_ROTATED_OUT)
    new = _new_key(organization, actor)
    private_pem = _private_pem(new)
    now = timezone.now()
    resigned = 0
    live = ModelSignature.objects.filter(
        key=old, expires_at__gt=now, version__status=ModelVersion.Status.SIGNED
    ).select_related("version__model")
    for signature in live:
        data = dict(signature.manifest)
        data["signing_key_id"] = new.key_id
        renewed = manifest.ModelManifest.from_dict(data)
        ModelSignature.objects.create(
            version=signature.version,
            key=new,
            release_counter=signature.release_counter,
            manifest=renewed.to_dict(),
            envelope=manifest.sign_manifest(
                manifest=renewed,
                private_key_pem=private_pem,
                artifact_name=signature.version.file_name,
            ).decode(),
            expires_at=signature.expires_at,
            signed_by=actor.user,
        )
        resigned += 1
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.SIGNING_KEY_CREATED,
        target=new,
        target_label=f"key {new.key_id[:16]}…",
        data={"key_id": new.key_id, "replaces": old.key_id, "resigned": resigned},
    )
    return new


@transaction.atomic
def retire_signing_key(*, key: SigningKey, actor: Actor) -> SigningKey:
    """Retire a key for good: every signature it made stops verifying on gateways."""
    key = SigningKey.objects.select_for_update().get(pk=key.pk)
    if key.status == SigningKey.Status.RETIRED:
        raise Conflict("The key is already retired.", code="already_retired")
    _retire(key, actor, RegistryVerb.SIGNING_KEY_RETIRED)
    return key


def trusted_keys(organization: Organization) -> dict[str, manifest.TrustedKey]:
    """All keys of the organisation as a verifier's trust store."""
    return {
        key.key_id: manifest.TrustedKey(
            public_pem=key.public_pem.encode("ascii"), status=key.status, retired_at=key.retired_at
        )
        for key in SigningKey.objects.filter(organization=organization)
    }


def passed_targets(version: ModelVersion) -> list[ValidationRun]:
    """The latest finished run per target, for the targets where it passed."""
    latest: dict[int, ValidationRun] = {}
    runs = version.validation_runs.filter(finished_at__isnull=False).select_related("target")
    for run in runs.order_by("finished_at", "pk"):
        latest[run.target_id] = run
    return [run for run in latest.values() if run.status == ValidationRun.Status.PASSED]


def _input_schema(version: ModelVersion) -> tuple[manifest.InputSpec, ...]:
    specs = []
    for tensor in version.metadata.get("inputs", []):
        shape = [
            dim if isinstance(dim, int) else (dim or f"dim{axis}")
            for axis, dim in enumerate(tensor.get("shape") or [])
        ]
        specs.append(
            manifest.InputSpec(name=tensor["name"], dtype=tensor.get("dtype") or "?", shape=shape)
        )
    return tuple(specs)


@transaction.atomic
def sign_version(
    *, version: ModelVersion, actor: Actor, role: str, valid_days: int | None = None
) -> ModelSignature:
    """Sign a validated version. Only an approver may, and only when the version's latest
    validation passed; the model's release counter moves up by one."""
    if not role_can(role, Action.SIGN_MODELS):
        raise Forbidden("Only an approver can sign a model version.")
    version = (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related("model__organization")
        .get(pk=version.pk)
    )
    if version.status != ModelVersion.Status.VALIDATED:
        raise Conflict(
            f"Only a validated version can be signed; {version.version} is "
            f"{version.get_status_display().lower()}.",
            code="not_validated",
        )
    latest = (
        version.validation_runs.filter(finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .first()
    )
    if latest is None or latest.status != ValidationRun.Status.PASSED:
        raise Conflict("The latest validation of this version did not pass.", code="not_validated")
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
    passed = passed_targets(version)
    now = timezone.now()
    expires_at = now + timedelta(days=valid_days or settings.MANIFEST_VALIDITY_DAYS)
    signed = manifest.ModelManifest(
        organisation_slug=organization.slug,
        organisation_id=organization.pk,
        model_name=model.name,
        version=version.version,
        artifact_sha256=version.sha256,
        artifact_size=version.size_bytes,
        targets=tuple(sorted(run.target.name for run in passed)),
        input_schema=_input_schema(version),
        validation_report_sha256=latest.report_digest,
        created_at=now,
        expires_at=expires_at,
        release_counter=model.release_counter,
        signing_key_id=key.key_id,
    )
    envelope = manifest.sign_manifest(
        manifest=signed, private_key_pem=_private_pem(key), artifact_name=version.file_name
    )
    signature = ModelSignature.objects.create(
        version=version,
        key=key,
        release_counter=model.release_counter,
        manifest=signed.to_dict(),
        envelope=envelope.decode(),
        expires_at=expires_at,
        signed_by=actor.user,
    )
    transition_version(version=version, to=ModelVersion.Status.SIGNED)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RegistryVerb.MODEL_VERSION_SIGNED,
        target=version,
        data={
            "release_counter": model.release_counter,
            "key_id": key.key_id,
            "sha256": version.sha256,
            "targets": list(signed.targets),
            "expires_at": expires_at.isoformat(),
        },
    )
    return signature
