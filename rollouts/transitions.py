"""The three state machines of a rollout and their transition functions: the only code that
assigns a rollout's, a wave's or a deployment action's ``status``. Every transition is audited
in the caller's transaction (a bulk transition of many actions writes one event with the
count and a sample of device ids)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict
from opshero.services import record_audit_event

from .audit import RolloutVerb
from .models import DeploymentAction, Rollout, Wave

R = Rollout.Status
W = Wave.Status
A = DeploymentAction.Status

ROLLOUT_TRANSITIONS: dict[str, set[str]] = {
    R.DRAFT: {R.PENDING_APPROVAL, R.ABORTED},
    R.PENDING_APPROVAL: {R.APPROVED, R.REJECTED, R.DRAFT, R.ABORTED},
    R.APPROVED: {R.RUNNING, R.DRAFT, R.ABORTED},  # draft: the approval was voided
    R.REJECTED: {R.DRAFT},
    R.RUNNING: {R.PAUSED, R.COMPLETED, R.ABORTED, R.ROLLED_BACK},
    R.PAUSED: {R.RUNNING, R.ABORTED, R.ROLLED_BACK},
    R.COMPLETED: {R.ROLLED_BACK},  # a completed rollout can still be taken back
    R.ABORTED: set(),
    R.ROLLED_BACK: set(),
}

WAVE_TRANSITIONS: dict[str, set[str]] = {
    W.PENDING: {W.RUNNING},
    W.RUNNING: {W.SOAKING, W.DONE, W.FAILED},  # done: an empty wave, or no soak
    W.SOAKING: {W.DONE, W.FAILED},
    W.DONE: {W.FAILED},  # rolled back after it finished
    W.FAILED: set(),
}

ACTION_TRANSITIONS: dict[str, set[str]] = {
    A.PENDING: {A.NOTIFIED, A.ROLLED_BACK},  # rolled back: never touched, nothing to undo
    A.NOTIFIED: {A.DOWNLOADING, A.VERIFYING, A.INSTALLED, A.FAILED, A.TIMED_OUT, A.ROLLED_BACK},
    A.DOWNLOADING: {A.VERIFYING, A.INSTALLED, A.FAILED, A.TIMED_OUT, A.ROLLED_BACK},
    A.VERIFYING: {A.INSTALLED, A.FAILED, A.TIMED_OUT, A.ROLLED_BACK},
    A.INSTALLED: {A.HEALTHY, A.FAILED, A.TIMED_OUT, A.ROLLED_BACK},
    A.HEALTHY: {A.FAILED, A.ROLLED_BACK},  # failed: it crashed after it was healthy
    A.FAILED: {A.ROLLED_BACK},
    # A device that missed its deadline may still finish; it counts as it ends.
    A.TIMED_OUT: {A.INSTALLED, A.HEALTHY, A.FAILED, A.ROLLED_BACK},
    A.ROLLED_BACK: set(),
}

# The order of a device's progress: a report below the current rank is "backwards".
ACTION_RANK = {
    A.PENDING: 0,
    A.NOTIFIED: 1,
    A.DOWNLOADING: 2,
    A.VERIFYING: 3,
    A.INSTALLED: 4,
    A.HEALTHY: 5,
    A.TIMED_OUT: 3,
    A.FAILED: 6,
    A.ROLLED_BACK: 7,
}


def _refuse(kind: str, name: str, current: str, to: str, labels) -> Conflict:
    return Conflict(
        f"{kind} {name} is {labels(current).label.lower()}; it cannot become "
        f"{labels(to).label.lower()}.",
        code="invalid_transition",
    )


def transition_rollout(
    *, rollout: Rollout, to: str, actor: Actor, reason: str = "", **changes: Any
) -> Rollout:
    """Move a rollout to ``to`` (refusing what the machine lacks) and audit it."""
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in ROLLOUT_TRANSITIONS[rollout.status]:
        raise _refuse("Rollout", f"'{rollout.name}'", rollout.status, to, R)
    before = rollout.status
    for name, value in changes.items():
        setattr(rollout, name, value)
    rollout.status = to
    rollout.updated_at = timezone.now()
    rollout.save(update_fields=["status", "updated_at", *changes])
    record_audit_event(
        organization=rollout.organization,
        actor=actor,
        verb=RolloutVerb.ROLLOUT_TRANSITIONED,
        target=rollout,
        data={"from": before, "to": to, "reason": reason[:500]},
    )
    return rollout


def transition_wave(*, wave: Wave, to: str, actor: Actor, reason: str = "", **changes: Any) -> Wave:
    """Move a wave to ``to`` and audit it against its rollout."""
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in WAVE_TRANSITIONS[wave.status]:
        raise _refuse("Wave", f"'{wave.name}'", wave.status, to, W)
    before = wave.status
    for name, value in changes.items():
        setattr(wave, name, value)
    wave.status = to
    wave.save(update_fields=["status", *changes])
    record_audit_event(
        organization=wave.rollout.organization,
        actor=actor,
        verb=RolloutVerb.WAVE_TRANSITIONED,
        target=wave.rollout,
        data={"wave": wave.name, "from": before, "to": to, "reason": reason[:500]},
    )
    return wave


def transition_action(
    *, action: DeploymentAction, to: str, actor: Actor, reason: str = "", **changes: Any
) -> DeploymentAction:
    """Move one device's deployment action to ``to`` and audit it."""
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in ACTION_TRANSITIONS[action.status]:
        raise _refuse("The deployment on device", f"#{action.device_id}", action.status, to, A)
    before = action.status
    for name, value in changes.items():
        setattr(action, name, value)
    action.status = to
    action.updated_at = timezone.now()
    action.save(update_fields=["status", "updated_at", *changes])
    record_audit_event(
        organization=action.rollout.organization,
        actor=actor,
        verb=RolloutVerb.DEPLOYMENT_TRANSITIONED,
        target=action.rollout,
        data={"device_id": action.device_id, "from": before, "to": to, "reason": reason[:500]},
    )
    return action


def transition_actions(
    *,
    rollout: Rollout,
    actions: QuerySet[DeploymentAction],
    to: str,
    actor: Actor,
    reason: str = "",
    **changes: Any,
) -> int:
    """Move every action of ``actions`` whose state allows it to ``to`` in one UPDATE; returns
    how many moved. Actions in a state that does not allow ``to`` are left as they are (the
    filter is part of the UPDATE, so a concurrent device report is never overwritten)."""
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    allowed = [state for state, targets in ACTION_TRANSITIONS.items() if to in targets]
    scoped = actions.filter(rollout=rollout, status__in=allowed)
    sample = list(scoped.values_list("device_id", flat=True)[:20])
    moved = scoped.update(status=to, updated_at=timezone.now(), **changes)
    if moved:
        record_audit_event(
            organization=rollout.organization,
            actor=actor,
            verb=RolloutVerb.DEPLOYMENT_TRANSITIONED,
            target=rollout,
            data={"to": to, "devices": moved, "sample_device_ids": sample, "reason": reason[:500]},
        )
    return moved
