"""Organisation signing keys and model signatures.

Private keys are generated here, encrypted at once with ``SIGNING_MASTER_KEY``
(``protocol.keystore``: AES-256-GCM, key id as associated data) and never returned. A
signature covers the manifest defined in ``protocol.manifest`` (version 2): the artifact's
digest and size and every file in it with its own digest, the targets whose newest validation
passed each with its report digest, the input schema and I/O contract, the accuracy waiver and
four-eyes mode it was signed under, validity period and the model's next release counter.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden, InvalidInput
from opshero.models import Organization
from opshero.roles import Action, role_can
from opshero.services import record_audit_event
from protocol import keystore, manifest
from protocol.contract import IoContract

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
        if data.get("manifest_version") == 1:  # signed before manifest v2: same facts, new form
            data = manifest.upgrade_v1(data, artifact_name=signature.version.file_name)
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
            signed_by=actor.user if not signature.reissue_of_id else None,
            accuracy_waiver=signature.accuracy_waiver,
            four_eyes_relaxed=signature.four_eyes_relaxed,
            reissue_of=signature.reissue_of,
            reissue_reason=signature.reissue_reason,
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
    from .services import latest_runs_by_target

    return [
        run
        for run in latest_runs_by_target(version).values()
        if run.status == ValidationRun.Status.PASSED
    ]


def accuracy_measured(run: ValidationRun) -> bool:
    """Whether the run measured accuracy on labelled inputs (an accuracy or INT8-drop gate was
    evaluated, not skipped for want of labels)."""
    for step in (run.report or {}).get("steps") or []:
        if step.get("name") == "gates":
            data = step.get("data") or {}
            if "accuracy_measured" in data:
                return bool(data["accuracy_measured"])
            return any(
                gate.get("name") in {"min_accuracy", "int8_accuracy_drop", "ece"}
                and gate.get("status") in {"passed", "failed"}
                for gate in data.get("gates") or []
            )
    return False


def signing_blockers(version: ModelVersion, user) -> dict[str, Any]:
    """What signing this version needs from ``user``: the targets it would cover, whether an
    accuracy waiver is needed, and whether four-eyes stops this user (for the page)."""
    passed = passed_targets(version)
    organization = version.model.organization
    own = user is not None and version.uploaded_by_id == getattr(user, "pk", None)
    return {
        "targets": sorted(run.target.name for run in passed),
        "needs_waiver": bool(passed) and not any(accuracy_measured(run) for run in passed),
        "uploader": own,
        "four_eyes_blocks": own and not organization.single_approver,
        "four_eyes_relaxed": own and organization.single_approver,
    }


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


def _files(version: ModelVersion) -> tuple[manifest.FileEntry, ...]:
    files = version.files or [
        {"path": version.file_name, "sha256": version.sha256, "size": version.size_bytes}
    ]
    return tuple(
        manifest.FileEntry(path=entry["path"], sha256=entry["sha256"], size=entry["size"])
        for entry in files
    )


def _username(user) -> str:
    return getattr(user, "username", "") or "unknown"


@transaction.atomic
def sign_version(
    *,
    version: ModelVersion,
    actor: Actor,
    role: str,
    valid_days: int | None = None,
    accuracy_waiver: str = "",
) -> ModelSignature:
    """Sign a validated version for the targets whose newest validation passed.

    Only an approver may, and not the version's uploader (four-eyes) unless the organisation
    allows a single approver (the signature then records it). When no covered target measured
    accuracy on labelled inputs, the approver must give a waiver reason. The manifest lists
    exactly the passed targets, each with its own report digest; the model's release counter
    moves up by one.
    """
    if not role_can(role, Action.SIGN_MODELS):
        raise Forbidden("Only an approver can sign a model version.")
    version = (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related("model__organization", "derived_from")
        .get(pk=version.pk)
    )
    if version.status != ModelVersion.Status.VALIDATED:
        raise Conflict(
            f"Only a validated version can be signed; {version.version} is "
            f"{version.get_status_display().lower()}.",
            code="not_validated",
        )
    organization = version.model.organization
    relaxed = False
    if actor.user is not None and version.uploaded_by_id == actor.user.pk:
        if not organization.single_approver:
            raise Forbidden(
                "Four-eyes: you uploaded this version, so another approver signs it. An "
                "organisation with a single approver can allow this under Members → Approval "
                "policy (audited).",
                code="four_eyes",
            )
        relaxed = True
    passed = sorted(passed_targets(version), key=lambda run: run.target.name)
    if not passed:
        raise Conflict(
            "No target's latest validation of this version passed.", code="not_validated"
        )
    accuracy_waiver = (accuracy_waiver or "").strip()
    waiver = None
    if not any(accuracy_measured(run) for run in passed):
        if not accuracy_waiver:
            raise InvalidInput(
                "Accuracy was never measured on labelled inputs for this version (no target's "
                "run had labels). Give a waiver reason to sign it anyway; it is shown on the "
                "signature and kept in the audit log.",
                fields={"accuracy_waiver": ["Required: accuracy was not measured."]},
                code="accuracy_waiver_required",
            )
        waiver = manifest.Waiver(reason=accuracy_waiver[:2000], approved_by=_username(actor.user))
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
    expires_at = now + timedelta(days=valid_days or settings.MANIFEST_VALIDITY_DAYS)
    parent = version.derived_from if version.variant_kind else None
    signed = manifest.ModelManifest(
        organisation_slug=organization.slug,
        organisation_id=organization.pk,
        model_name=model.name,
        version=version.version,
        artifact_kind=version.artifact_kind,
        artifact_sha256=version.sha256,
        artifact_size=version.size_bytes,
        entrypoint=version.entrypoint or version.file_name,
        files=_files(version),
        targets=tuple(
            manifest.TargetEvidence(
                name=run.target.name,
                validation_report_sha256=run.report_digest,
                documentary=run.target.documentary,
            )
            for run in passed
        ),
        input_schema=_input_schema(version),
        io_contract=IoContract.from_dict(version.io_contract) if version.io_contract else None,
        accuracy_waiver=waiver,
        four_eyes="relaxed" if relaxed else "enforced",
        variant=manifest.VariantOrigin(
            kind=version.variant_kind,
            parent_version=parent.version,
            parent_sha256=parent.sha256,
        )
        if parent is not None
        else None,
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
        accuracy_waiver=waiver.reason if waiver else "",
        four_eyes_relaxed=relaxed,
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
            "targets": [
                {"name": t.name, "report": t.validation_report_sha256} for t in signed.targets
            ],
            "expires_at": expires_at.isoformat(),
            "accuracy_waiver": waiver.reason if waiver else None,
            "four_eyes": signed.four_eyes,
            "uploaded_by": _username(version.uploaded_by) if version.uploaded_by_id else None,
        },
    )
    return signature
