"""Writes of staged rollouts: plan, submit, approve or reject, operator controls, rollback and
device status reports. The beat-driven engine (``rollouts.engine``) calls the same functions.

Assignments (what a device should run) change only through
``modelregistry.assignment_services``; re-issued manifests come from there too.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from fleet.models import Device, DeviceGroup, Site
from fleet.selectors import members_of
from modelregistry import assignment_services as assignments
from modelregistry.models import DeviceAssignment, ModelVersion
from modelregistry.signing_services import passed_targets
from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden, InvalidInput, NotFound
from opshero.models import Organization
from opshero.roles import Action, role_can
from opshero.services import record_audit_event

from .audit import RolloutVerb
from .models import DeploymentAction, HoldKind, Rollout, RolloutApproval, Wave
from .planning import (
    AnalysisSettings,
    PlannedDevice,
    WaveSpec,
    check_wave_plan,
    default_waves,
    plan_waves,
    runtime_refusal,
)
from .transitions import (
    ACTION_RANK,
    transition_action,
    transition_actions,
    transition_rollout,
    transition_wave,
)

A = DeploymentAction.Status
R = Rollout.Status
W = Wave.Status


# --- eligibility and the plan ------------------------------------------------------------------


@dataclass
class PlanPreview:
    """What a rollout would do, before anything is saved (the wizard's preview)."""

    waves: list[tuple[WaveSpec, list[int]]]
    eligible: list[Device]
    exclusions: list[dict]
    conflicts: list[dict] = field(default_factory=list)
    site_names: dict[int, str] = field(default_factory=dict)

    @property
    def device_count(self) -> int:
        return len(self.eligible)

    def wave_sites(self, device_ids: Sequence[int]) -> int:
        by_id = {device.pk: device.site_id for device in self.eligible}
        return len({by_id[i] for i in device_ids})


def _model_opset(version: ModelVersion) -> int | None:
    for entry in (version.metadata or {}).get("opset_imports") or []:
        if entry.get("domain") in ("", "ai.onnx"):
            return int(entry["version"])
    return None


def _require_rollable(version: ModelVersion) -> None:
    if version.status != ModelVersion.Status.SIGNED:
        state = version.get_status_display().lower()
        raise Conflict(
            f"{version.model.name} {version.version} is {state}: only a signed version can be "
            "rolled out (validate it, then an approver signs it).",
            code="not_signed",
        )
    if assignments.live_signature(version) is None:
        raise Conflict(
            f"{version.model.name} {version.version} has no live signature (it expired, or "
            "its key was retired); an approver signs it again.",
            code="signature_expired",
        )


def _targeted(
    org: Organization, site_ids: Sequence[int], group_ids: Sequence[int]
) -> tuple[list[Device], dict[int, str]]:
    sites = {site.pk: site for site in Site.objects.filter(organization=org, pk__in=site_ids)}
    unknown = sorted(set(site_ids) - set(sites))
    if unknown:
        raise InvalidInput("Unknown site.", fields={"site_ids": [f"No such site: {unknown[0]}."]})
    groups = list(DeviceGroup.objects.filter(organization=org, pk__in=group_ids))
    if len(groups) != len(set(group_ids)):
        raise InvalidInput("Unknown device group.", fields={"group_ids": ["No such group."]})
    ids = set(
        Device.objects.filter(organization=org, site_id__in=sites).values_list("pk", flat=True)
    )
    for group in groups:
        ids |= set(members_of(group).values_list("pk", flat=True))
    devices = list(
        Device.objects.filter(organization=org, pk__in=ids)
        .select_related("site", "hardware_target")
        # A target's operator table is kilobytes of JSON: read it once per device and a plan
        # of 10,000 devices spends minutes decoding the same rows (benchmarks/bench_rollouts).
        .defer("hardware_target__operators", "hardware_target__source", "hardware_target__notes")
        .order_by("pk")
    )
    return devices, {device.site_id: device.site.name for device in devices}


def preview_rollout(
    *,
    organization: Organization,
    version: ModelVersion,
    site_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    canary_site_ids: Sequence[int] = (),
    waves: Sequence[WaveSpec] | None = None,
    seed: int = 0,
    exclude_rollout: Rollout | None = None,
) -> PlanPreview:
    """Which devices a rollout of ``version`` to the targets would reach, in which wave, and
    every targeted device it leaves out with the reason."""
    waves = list(waves or default_waves())
    try:
        check_wave_plan(waves)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields={"waves": [str(exc)]}) from exc
    if not site_ids and not group_ids:
        raise InvalidInput(
            "Choose at least one site or device group to roll out to.",
            fields={"site_ids": ["Choose a target."]},
            code="empty_target",
        )
    devices, site_names = _targeted(organization, site_ids, group_ids)
    passed = {run.target_id for run in passed_targets(version)}
    opset = _model_opset(version)
    assigned = dict(
        DeviceAssignment.objects.filter(
            model_id=version.model_id, device__in=[d.pk for d in devices]
        ).values_list("device_id", "version_id")
    )
    eligible: list[Device] = []
    exclusions: list[dict] = []
    for device in devices:
        reason = None
        if device.status != Device.Status.ACTIVE:
            reason = f"device is {device.get_status_display().lower()}"
        elif device.hardware_target_id is None:
            reason = "no hardware target set, so no validation covers it"
        elif device.hardware_target_id not in passed:
            reason = (
                f"its target {device.hardware_target.name} has no passed validation of "
                f"{version.version}"
            )
        elif (refusal := runtime_refusal(runtime=device.runtime_version, opset=opset)) is not None:
            reason = refusal
        elif assigned.get(device.pk) == version.pk:
            reason = f"already assigned {version.version}"
        if reason is None:
            eligible.append(device)
        else:
            exclusions.append(
                {
                    "device_id": device.pk,
                    "device": device.name,
                    "site": device.site.name,
                    "reason": reason,
                }
            )
    busy = DeploymentAction.objects.filter(
        model_id=version.model_id, active=True, device__in=[d.pk for d in eligible]
    )
    if exclude_rollout is not None:
        busy = busy.exclude(rollout=exclude_rollout)
    conflicts: dict[int, dict] = {}
    for rollout_id, name, status in busy.values_list(
        "rollout_id", "rollout__name", "rollout__status"
    ):
        entry = conflicts.setdefault(
            rollout_id, {"rollout_id": rollout_id, "name": name, "status": status, "devices": 0}
        )
        entry["devices"] += 1
    canary = [int(site) for site in canary_site_ids]
    if waves[0].share_percent is None:
        if not 1 <= len(canary) <= 2:
            raise InvalidInput(
                "Name one or two canary sites.",
                fields={"canary_site_ids": ["Choose one or two sites for the canary."]},
                code="canary_sites",
            )
        eligible_sites = {device.site_id for device in eligible}
        outside = [site for site in canary if site not in eligible_sites]
        if outside:
            raise InvalidInput(
                "A canary site has no eligible device in the target.",
                fields={"canary_site_ids": ["Pick canary sites with eligible devices."]},
                code="canary_sites",
            )
    planned = plan_waves(
        devices=[PlannedDevice(id=d.pk, site_id=d.site_id) for d in eligible],
        canary_site_ids=canary,
        waves=waves,
        seed=seed,
    )
    return PlanPreview(
        waves=list(zip(waves, planned, strict=True)),
        eligible=eligible,
        exclusions=exclusions,
        conflicts=sorted(conflicts.values(), key=lambda c: c["rollout_id"]),
        site_names=site_names,
    )


def _require(role: str, action: Action, message: str) -> None:
    if not role_can(role, action):
        raise Forbidden(message)


@transaction.atomic
def create_rollout(
    *,
    organization: Organization,
    actor: Actor,
    role: str,
    version: ModelVersion,
    name: str = "",
    site_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    canary_site_ids: Sequence[int] = (),
    waves: Sequence[WaveSpec] | None = None,
    analysis: AnalysisSettings | None = None,
    seed: int | None = None,
) -> Rollout:
    """A draft rollout with its waves and one pending deployment action per eligible device.

    Refused when the version is not signed (or its signature is no longer live), when the
    target is empty or leaves no eligible device, and when any eligible device is already in
    another active rollout of the same model (the conflict is named)."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can plan a rollout.")
    if version.model.organization_id != organization.pk:
        raise NotFound("No such model version.")
    _require_rollable(version)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    waves = list(waves or default_waves())
    analysis = analysis or AnalysisSettings()
    preview = preview_rollout(
        organization=organization,
        version=version,
        site_ids=site_ids,
        group_ids=group_ids,
        canary_site_ids=canary_site_ids,
        waves=waves,
        seed=seed,
    )
    if not preview.eligible:
        raise Conflict(
            f"No targeted device can take {version.version}: "
            + (
                "; ".join(f"{e['device']}: {e['reason']}" for e in preview.exclusions[:3])
                or "the target has no devices"
            ),
            code="no_eligible_devices",
        )
    if preview.conflicts:
        first = preview.conflicts[0]
        raise Conflict(
            f"{first['devices']} of these devices are already in rollout #{first['rollout_id']} "
            f"'{first['name']}' ({first['status'].replace('_', ' ')}) of the same model; finish "
            "or abort it first.",
            code="overlapping_rollout",
        )
    pins = approval_pins(version)
    rollout = Rollout.objects.create(
        organization=organization,
        model=version.model,
        version=version,
        plan_evidence_digest=pins["evidence_digest"],
        plan_manifest_digest=pins["manifest_digest"],
        name=(name or f"{version.model.name} {version.version}")[:160],
        target_site_ids=sorted({int(s) for s in site_ids}),
        target_group_ids=sorted({int(g) for g in group_ids}),
        canary_site_ids=sorted({int(s) for s in canary_site_ids}),
        seed=seed,
        analysis_settings=analysis.to_dict(),
        exclusions=preview.exclusions,
        created_by=actor.user,
    )
    _write_plan(rollout, preview)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RolloutVerb.ROLLOUT_CREATED,
        target=rollout,
        data={
            "version": version.version,
            "sha256": version.sha256,
            "devices": preview.device_count,
            "excluded": len(preview.exclusions),
            "waves": [[spec.name, len(ids)] for spec, ids in preview.waves],
            "seed": seed,
        },
    )
    return rollout


def _write_plan(rollout: Rollout, preview: PlanPreview) -> None:
    current = dict(
        DeviceAssignment.objects.filter(
            model_id=rollout.model_id, device__in=[d.pk for d in preview.eligible]
        ).values_list("device_id", "version_id")
    )
    sites = {device.pk: device.site_id for device in preview.eligible}
    actions = []
    for number, (spec, ids) in enumerate(preview.waves):
        wave = Wave.objects.create(
            rollout=rollout,
            number=number,
            name=spec.name,
            share_percent=spec.share_percent,
            soak_minutes=spec.soak_minutes,
            success_threshold=spec.success_threshold,
            error_threshold=spec.error_threshold,
            device_deadline_minutes=spec.device_deadline_minutes,
            device_count=len(ids),
        )
        actions += [
            DeploymentAction(
                organization_id=rollout.organization_id,
                rollout=rollout,
                wave=wave,
                device_id=device_id,
                model_id=rollout.model_id,
                site_id=sites[device_id],
                previous_version_id=current.get(device_id),
            )
            for device_id in ids
        ]
    try:
        with transaction.atomic():
            DeploymentAction.objects.bulk_create(actions, batch_size=2000)
    except IntegrityError as exc:  # a concurrent rollout claimed a device first
        raise Conflict(
            "Another rollout of this model claimed some of these devices a moment ago; "
            "reload and plan again.",
            code="overlapping_rollout",
        ) from exc


# --- approval ------------------------------------------------------------------------------------


@transaction.atomic
def submit_rollout(*, rollout: Rollout, actor: Actor, role: str) -> Rollout:
    """Ask for approval (draft → pending approval)."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can submit a rollout.")
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    _require_rollable(rollout.version)
    return transition_rollout(
        rollout=rollout, to=R.PENDING_APPROVAL, actor=actor, submitted_at=timezone.now()
    )


@transaction.atomic
def withdraw_rollout(*, rollout: Rollout, actor: Actor, role: str) -> Rollout:
    """Take a submitted rollout back to draft."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can withdraw a rollout.")
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    return transition_rollout(rollout=rollout, to=R.DRAFT, actor=actor, reason="withdrawn")


def approval_pins(version: ModelVersion) -> dict[str, str | int]:
    """What an approval is pinned to, as it stands now."""
    pins = assignments.approval_pins_many([version])[version.pk]
    if pins is None:
        raise Conflict("The version has no live signature.", code="signature_expired")
    return pins


def approval_changes(rollout: Rollout) -> list[str]:
    """Why the rollout's approval no longer holds (empty when it does)."""
    approval = rollout.approvals.filter(
        decision=RolloutApproval.Decision.APPROVED, voided_at__isnull=True
    ).first()
    if approval is None:
        return ["there is no standing approval"]
    version = ModelVersion.objects.get(pk=rollout.version_id)
    if version.status != ModelVersion.Status.SIGNED:
        return [f"the version is now {version.get_status_display().lower()}"]
    try:
        pins = approval_pins(version)
    except Conflict:
        return ["the version's signature expired or its key was retired"]
    changed = []
    if pins["artifact_sha256"] != approval.artifact_sha256:
        changed.append("the artifact digest changed")
    if pins["manifest_digest"] != approval.manifest_digest:
        changed.append("the signed manifest changed")
    if pins["evidence_digest"] != approval.evidence_digest:
        changed.append("the validation evidence changed (the version was validated again)")
    return changed


@transaction.atomic
def approve_rollout(
    *, rollout: Rollout, actor: Actor, role: str, seen: dict[str, str] | None = None
) -> RolloutApproval:
    """An approver other than the creator approves; the approval is pinned to the artifact
    digest, the signed manifest and the validation evidence.

    Refused when the evidence or the manifest changed since the rollout was planned (its
    exclusions were worked out against them: plan again), and when ``seen`` (the digests the
    approval page showed) differs from what is current: nobody approves what they did not see."""
    _require(role, Action.APPROVE_ROLLOUTS, "Only an approver can approve a rollout.")
    rollout = Rollout.objects.select_for_update().select_related("organization").get(pk=rollout.pk)
    relaxed = False
    if actor.user is not None and rollout.created_by_id == actor.user.pk:
        if not rollout.organization.single_approver:
            raise Forbidden(
                "Four-eyes: you planned this rollout, so another approver approves it. An "
                "organisation with a single approver can allow this under Members → Approval "
                "policy (audited).",
                code="four_eyes",
            )
        relaxed = True
    if rollout.status != R.PENDING_APPROVAL:
        raise Conflict(
            f"Only a rollout pending approval can be approved; this one is "
            f"{rollout.get_status_display().lower()}.",
            code="invalid_transition",
        )
    version = ModelVersion.objects.select_related("model").get(pk=rollout.version_id)
    _require_rollable(version)
    pins = approval_pins(version)
    if rollout.plan_evidence_digest and pins["evidence_digest"] != rollout.plan_evidence_digest:
        raise Conflict(
            "The version's validation evidence changed since this rollout was planned (it was "
            "validated again); which devices may take it must be worked out again. Withdraw "
            "it to draft and plan a new rollout.",
            code="evidence_changed",
        )
    if rollout.plan_manifest_digest and pins["manifest_digest"] != rollout.plan_manifest_digest:
        raise Conflict(
            "The version's signed manifest changed since this rollout was planned; plan again.",
            code="manifest_changed",
        )
    changed = [
        name
        for name in ("artifact_sha256", "manifest_digest", "evidence_digest")
        if seen and seen.get(name) and seen[name] != pins[name]
    ]
    if changed:
        raise Conflict(
            "What you were shown changed before you approved ("
            + ", ".join(name.replace("_", " ") for name in changed)
            + "); reload the page and look again.",
            code="approval_outdated",
        )
    approval = RolloutApproval.objects.create(
        rollout=rollout,
        decision=RolloutApproval.Decision.APPROVED,
        decided_by=actor.user,
        artifact_sha256=pins["artifact_sha256"],
        manifest_digest=pins["manifest_digest"],
        evidence_digest=pins["evidence_digest"],
        signature_id=pins["signature_id"],
        four_eyes_relaxed=relaxed,
    )
    transition_rollout(rollout=rollout, to=R.APPROVED, actor=actor, approved_at=timezone.now())
    record_audit_event(
        organization=rollout.organization,
        actor=actor,
        verb=RolloutVerb.ROLLOUT_APPROVED,
        target=rollout,
        data={**pins, "four_eyes": "relaxed" if relaxed else "enforced"},
    )
    return approval


@transaction.atomic
def reject_rollout(*, rollout: Rollout, actor: Actor, role: str, reason: str) -> RolloutApproval:
    """An approver rejects with a reason (the creator may not decide either way)."""
    _require(role, Action.APPROVE_ROLLOUTS, "Only an approver can reject a rollout.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "Say why the rollout is rejected.",
            fields={"reason": ["A rejection needs a reason."]},
            code="reason_required",
        )
    rollout = Rollout.objects.select_for_update().select_related("organization").get(pk=rollout.pk)
    if (
        actor.user is not None
        and rollout.created_by_id == actor.user.pk
        and not rollout.organization.single_approver
    ):
        raise Forbidden("Four-eyes: another approver decides on your rollout.", code="four_eyes")
    version = rollout.version
    try:
        pins = approval_pins(version)
    except Conflict:  # an expired signature is one more reason to reject, not a blocker
        pins = {"artifact_sha256": version.sha256, "manifest_digest": "", "evidence_digest": ""}
        latest = version.signatures.order_by("-release_counter", "-pk").first()
        pins["signature_id"] = latest.approved_signature.pk if latest else None
    transition_rollout(rollout=rollout, to=R.REJECTED, actor=actor, reason=reason)
    approval = RolloutApproval.objects.create(
        rollout=rollout,
        decision=RolloutApproval.Decision.REJECTED,
        decided_by=actor.user,
        reason=reason[:2000],
        artifact_sha256=pins["artifact_sha256"],
        manifest_digest=pins["manifest_digest"],
        evidence_digest=pins["evidence_digest"],
        signature_id=pins["signature_id"],
    )
    record_audit_event(
        organization=rollout.organization,
        actor=actor,
        verb=RolloutVerb.ROLLOUT_REJECTED,
        target=rollout,
        data={"reason": reason[:500]},
    )
    return approval


@transaction.atomic
def reopen_rollout(*, rollout: Rollout, actor: Actor, role: str) -> Rollout:
    """A rejected rollout back to draft, to change and submit again."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can reopen a rollout.")
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    return transition_rollout(rollout=rollout, to=R.DRAFT, actor=actor, reason="reopened")


def void_approval(*, rollout: Rollout, actor: Actor, reasons: list[str]) -> None:
    """The approval no longer matches what it was given: void it, back to draft."""
    now = timezone.now()
    text = "; ".join(reasons)
    rollout.approvals.filter(voided_at__isnull=True).update(voided_at=now, void_reason=text[:300])
    transition_rollout(rollout=rollout, to=R.DRAFT, actor=actor, reason=f"approval void: {text}")
    record_audit_event(
        organization=rollout.organization,
        actor=actor,
        verb=RolloutVerb.ROLLOUT_APPROVAL_VOIDED,
        target=rollout,
        data={"reasons": reasons},
    )


# --- starting and the operator's controls -------------------------------------------------------


def start_rollout(*, rollout: Rollout, actor: Actor) -> Rollout:
    """Approved → running, if the approval still holds (else it is voided). The manifest
    devices get is the version's live signature, re-issued with the model's current counter
    when an older signed version goes out (so no device that ran a newer one refuses it).
    Call inside a transaction holding the rollout's row lock."""
    changes = approval_changes(rollout)
    if changes:
        void_approval(rollout=rollout, actor=actor, reasons=changes)
        return rollout
    version = ModelVersion.objects.select_related("model").get(pk=rollout.version_id)
    signature = assignments.live_signature(version)
    if signature.release_counter < version.model.release_counter:
        signature = assignments.reissue_signature(
            version=version, actor=actor, reason=f"rollout #{rollout.pk} of an earlier version"
        )
    return transition_rollout(
        rollout=rollout,
        to=R.RUNNING,
        actor=actor,
        started_at=timezone.now(),
        signature=signature,
    )


def _locked(rollout: Rollout) -> Rollout:
    return Rollout.objects.select_for_update().select_related("organization").get(pk=rollout.pk)


def current_wave(rollout: Rollout) -> Wave | None:
    """The first wave that is not finished."""
    return rollout.waves.exclude(status__in=[W.DONE, W.FAILED]).order_by("number").first()


@transaction.atomic
def pause_rollout(*, rollout: Rollout, actor: Actor, role: str, reason: str = "") -> Rollout:
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can pause a rollout.")
    rollout = _locked(rollout)
    label = reason.strip() or f"paused by {actor.label}"
    return transition_rollout(
        rollout=rollout,
        to=R.PAUSED,
        actor=actor,
        reason=label,
        hold_reason=label,
        hold_kind=HoldKind.MANUAL,
    )


@transaction.atomic
def resume_rollout(*, rollout: Rollout, actor: Actor, role: str) -> Rollout:
    """Paused → running. Resuming accepts exactly what paused it: past the error threshold,
    the current wave's errors are not judged again; past an inconclusive analysis, the wave
    finishes on it. A manual pause, or a pause after a wave's rollback, accepts nothing."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can resume a rollout.")
    rollout = _locked(rollout)
    wave = current_wave(rollout)
    if rollout.status == R.PAUSED and wave is not None and wave.status != W.PENDING:
        if rollout.hold_kind == HoldKind.ERRORS:
            wave.errors_accepted = True
        if rollout.hold_kind == HoldKind.DECISION:
            wave.inconclusive_accepted = True
        wave.save(update_fields=["inconclusive_accepted", "errors_accepted"])
    return transition_rollout(
        rollout=rollout,
        to=R.RUNNING,
        actor=actor,
        reason=f"resumed: {rollout.get_hold_kind_display().lower()} accepted"
        if rollout.hold_kind in (HoldKind.ERRORS, HoldKind.DECISION)
        else "resumed",
        hold_reason="",
        hold_kind="",
        needs_decision=False,
    )


@transaction.atomic
def advance_now(*, rollout: Rollout, actor: Actor, role: str) -> Wave:
    """Finish the current wave now (skipping the rest of its soak and analysis); the next
    wave starts on the engine's next tick."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can advance a rollout.")
    rollout = _locked(rollout)
    if rollout.status not in (R.RUNNING, R.PAUSED):
        raise Conflict(
            "Only a running or paused rollout can be advanced.", code="invalid_transition"
        )
    wave = current_wave(rollout)
    if wave is None or wave.status == W.PENDING:
        raise Conflict("No wave is in progress to advance.", code="invalid_transition")
    return transition_wave(
        wave=wave,
        to=W.DONE,
        actor=actor,
        reason="advanced now",
        finished_at=timezone.now(),
        outcome=f"Advanced by {actor.label} before its soak and analysis finished.",
    )


def _release_claims(rollout: Rollout) -> None:
    rollout.actions.filter(active=True).update(active=False)


def _send_back(rollout: Rollout, actions, *, actor: Actor, reason: str, now) -> dict[str, int]:
    """Point the devices of ``actions`` that were switched by this rollout back at the version
    they ran before, as a re-issued manifest above every counter they have seen (or at nothing,
    when they ran nothing of the model). A device whose assignment was changed since by
    someone else (a later rollout) is left alone and counted as ``moved_on``."""
    candidates = list(
        actions.exclude(status__in=[A.PENDING, A.ROLLED_BACK])
        .filter(rollback_requested_at__isnull=True)
        .values_list("pk", "device_id", "previous_version_id")
    )
    ours = set(
        DeviceAssignment.objects.filter(
            model_id=rollout.model_id,
            device_id__in=[device_id for _, device_id, _ in candidates],
            rollout_id=rollout.pk,
            version_id=rollout.version_id,
        ).values_list("device_id", flat=True)
    )
    switched = [row for row in candidates if row[1] in ours]
    by_previous: dict[int | None, list[tuple[int, int]]] = {}
    for action_id, device_id, previous_id in switched:
        by_previous.setdefault(previous_id, []).append((action_id, device_id))
    reissued = dict(rollout.rollback_signatures)
    for previous_id, pairs in by_previous.items():
        device_ids = [device_id for _, device_id in pairs]
        if previous_id is None:
            assignments.unassign_model(
                organization=rollout.organization,
                model=rollout.model,
                device_ids=device_ids,
                actor=actor,
                rollout_id=rollout.pk,
            )
            continue
        previous = ModelVersion.objects.get(pk=previous_id)
        if str(previous_id) not in reissued:
            signature = assignments.reissue_signature(
                version=previous, actor=actor, reason=f"rollback of rollout #{rollout.pk}"
            )
            reissued[str(previous_id)] = signature.pk
        assignments.assign_version(
            organization=rollout.organization,
            model=rollout.model,
            version=previous,
            device_ids=device_ids,
            actor=actor,
            purpose="rollback",
            rollout_id=rollout.pk,
            action_ids={device_id: action_id for action_id, device_id in pairs},
            previous=dict.fromkeys(device_ids),
        )
    rollout.actions.filter(pk__in=[pk for pk, _, _ in switched]).update(
        rollback_requested_at=now, updated_at=now
    )
    rollout.rollback_signatures = reissued
    if switched and rollout.rollback_started_at is None:
        rollout.rollback_started_at = now
        rollout.rollback_reason = reason
    rollout.save(update_fields=["rollback_signatures", "rollback_started_at", "rollback_reason"])
    return {"sent_back": len(switched), "moved_on": len(candidates) - len(switched)}


@transaction.atomic
def abort_rollout(*, rollout: Rollout, actor: Actor, role: str, reason: str = "") -> Rollout:
    """Stop for good: no further device is switched. Devices still on their way (notified,
    downloading, verifying) are sent back to what they ran, so nothing keeps installing a
    version nobody wants any more; devices that installed it keep it (roll back to take those
    back too)."""
    _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can abort a rollout.")
    rollout = _locked(rollout)
    reason = (reason or "").strip() or "aborted"
    now = timezone.now()
    transition_rollout(rollout=rollout, to=R.ABORTED, actor=actor, reason=reason, finished_at=now)
    _send_back(
        rollout,
        rollout.actions.filter(status__in=DeploymentAction.IN_FLIGHT),
        actor=actor,
        reason=f"aborted: {reason}",
        now=now,
    )
    _release_claims(rollout)
    return rollout


@transaction.atomic
def roll_back(
    *, rollout: Rollout, actor: Actor, role: str | None, wave: Wave | None = None, reason: str = ""
) -> Rollout:
    """Take the devices of one wave, or of the whole rollout, back to the version they ran
    before, as a re-issued manifest with a higher release counter. ``role`` None: the engine
    (analysis failed with auto-rollback on)."""
    if role is not None:
        _require(role, Action.MANAGE_ROLLOUTS, "Only an approver or an admin can roll back.")
    rollout = _locked(rollout)
    if rollout.status not in (R.RUNNING, R.PAUSED, R.COMPLETED):
        raise Conflict(
            f"A {rollout.get_status_display().lower()} rollout cannot be rolled back.",
            code="invalid_transition",
        )
    reason = (reason or "").strip() or f"rolled back by {actor.label}"
    now = timezone.now()
    waves = [wave] if wave is not None else list(rollout.waves.all())
    for each in waves:
        if each.status in (W.RUNNING, W.SOAKING, W.DONE):
            transition_wave(
                wave=each,
                to=W.FAILED,
                actor=actor,
                reason=reason,
                finished_at=now,
                outcome=f"Rolled back: {reason}",
            )
    scope = rollout.actions.filter(wave__in=waves)
    # Never notified: nothing to undo.
    transition_actions(
        rollout=rollout,
        actions=scope.filter(status=A.PENDING),
        to=A.ROLLED_BACK,
        actor=actor,
        reason=reason,
        rolled_back_at=now,
        active=False,
    )
    sent = _send_back(rollout, scope, actor=actor, reason=reason, now=now)
    whole = (
        wave is None
        or not rollout.actions.exclude(wave=wave)
        .filter(
            status__in=[
                *DeploymentAction.IN_FLIGHT,
                *DeploymentAction.SWITCHED,
                *DeploymentAction.BAD,
            ],
            rollback_requested_at__isnull=True,
        )
        .exists()
    )
    if whole:
        transition_rollout(
            rollout=rollout,
            to=R.ROLLED_BACK,
            actor=actor,
            reason=reason,
            finished_at=now,
            hold_reason="",
            hold_kind="",
            needs_decision=False,
        )
        # Later waves never started: nothing to undo, and the claims go.
        transition_actions(
            rollout=rollout,
            actions=rollout.actions.filter(status=A.PENDING),
            to=A.ROLLED_BACK,
            actor=actor,
            reason=reason,
            rolled_back_at=now,
        )
        _release_claims(rollout)
    elif rollout.status == R.RUNNING:
        transition_rollout(
            rollout=rollout,
            to=R.PAUSED,
            actor=actor,
            reason=reason,
            hold_reason=f"Wave {wave.name} rolled back: {reason}",
            hold_kind=HoldKind.ROLLBACK,
        )
    record_audit_event(
        organization=rollout.organization,
        actor=actor,
        verb=RolloutVerb.ROLLBACK_STARTED,
        target=rollout,
        data={
            "wave": wave.name if wave else None,
            "devices": sent["sent_back"],
            "moved_on": sent["moved_on"],
            "reason": reason[:500],
            "reissued": rollout.rollback_signatures,
        },
    )
    return rollout


# --- device reports -----------------------------------------------------------------------------

REPORTABLE = {A.DOWNLOADING, A.VERIFYING, A.INSTALLED, A.HEALTHY, A.FAILED, A.ROLLED_BACK}


@dataclass(frozen=True)
class ReportResult:
    action: DeploymentAction
    changed: bool
    note: str = ""


@transaction.atomic
def report_action_status(
    *,
    device: Device,
    action_id: int,
    status: str,
    actor: Actor,
    reason_code: str = "",
    reason: str = "",
    inferences_served: int = 0,
) -> ReportResult:
    """A device reports progress on its deployment action.

    Idempotent (the same report twice changes nothing), out-of-order safe (a report may skip
    states forward) and never backwards (a lower state is a 409). *healthy* is the device's
    confirmation that the model loaded and is serving inferences; the device repeats it, and
    the action becomes healthy (the engine) on a confirmation made once the rollout's device
    soak has passed since install: installed is not healthy. Once the rollout is over, reports
    are answered and change nothing (its figures are final), except a requested rollback."""
    action = (
        DeploymentAction.objects.select_for_update()
        .select_related("rollout__organization", "wave")
        .filter(pk=action_id, device=device)
        .first()
    )
    if action is None:
        raise NotFound("No such deployment for this device.", code="unknown_action")
    if status not in REPORTABLE:
        raise InvalidInput(
            f"Unknown status '{status}'.",
            fields={"status": [f"One of: {', '.join(sorted(REPORTABLE))}."]},
            code="invalid_status",
        )
    now = timezone.now()
    detail = {"reason_code": reason_code[:40], "detail": reason[:500]}
    finished = action.rollout.status in (R.COMPLETED, R.ABORTED, R.ROLLED_BACK, R.REJECTED)
    if finished and action.rollback_requested_at is None:
        return ReportResult(
            action,
            changed=False,
            note=f"the rollout is {action.rollout.get_status_display().lower()}",
        )
    if action.rollback_requested_at is not None:
        # The device is going back to the previous version: only the outcome counts.
        if action.status == A.ROLLED_BACK:
            return ReportResult(action, changed=False, note="already rolled back")
        if status == A.ROLLED_BACK:
            transition_action(
                action=action,
                to=A.ROLLED_BACK,
                actor=actor,
                rolled_back_at=now,
                active=False,
                finished_at=now,
            )
            return ReportResult(action, changed=True)
        return ReportResult(
            action, changed=False, note="a rollback was requested; report rolled_back"
        )
    if status == A.ROLLED_BACK:
        raise Conflict(
            "No rollback was requested for this deployment.", code="no_rollback_requested"
        )
    if status == A.HEALTHY:
        if inferences_served < 1:
            raise InvalidInput(
                "A health confirmation needs the inferences served since the model loaded.",
                fields={"inferences_served": ["Must be at least 1."]},
                code="no_inferences",
            )
        if action.status == A.HEALTHY:
            return ReportResult(action, changed=False, note="already healthy")
        if action.status in (A.FAILED,) or ACTION_RANK[action.status] > ACTION_RANK[A.HEALTHY]:
            raise Conflict(
                f"The deployment is {action.get_status_display().lower()}; it cannot go back to "
                "healthy.",
                code="status_backwards",
            )
        if action.status != A.INSTALLED:
            transition_action(action=action, to=A.INSTALLED, actor=actor, installed_at=now)
        action.confirmed_at = now
        action.inferences_served = max(action.inferences_served, inferences_served)
        action.save(update_fields=["confirmed_at", "inferences_served"])
        return ReportResult(
            action,
            changed=True,
            note="confirmed; healthy on a confirmation after the device soak",
        )
    if action.status == status:
        return ReportResult(action, changed=False, note="unchanged")
    if ACTION_RANK[status] < ACTION_RANK[action.status]:
        raise Conflict(
            f"The deployment is already {action.get_status_display().lower()}; "
            f"'{status}' would go backwards.",
            code="status_backwards",
        )
    if action.status == A.PENDING:
        raise Conflict("This deployment has not been sent to the device yet.", code="not_notified")
    extra: dict = {}
    if status == A.INSTALLED:
        extra["installed_at"] = now
    if status == A.FAILED:
        extra |= {**detail, "finished_at": now}
    transition_action(action=action, to=status, actor=actor, reason=reason[:200], **extra)
    return ReportResult(action, changed=True)
