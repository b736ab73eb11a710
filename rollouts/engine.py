"""The rollout engine: beat calls ``evaluate_rollouts`` every few seconds; each running rollout
is judged in its own transaction under its row lock, taken with ``SKIP LOCKED`` on PostgreSQL,
so two evaluators at once never judge the same rollout twice and a slow one never blocks
the other. Every step is idempotent: a tick that dies half way is redone by the next one.

One tick of a running rollout, on its current wave:

1. start the wave if it is pending;
2. notify the wave's pending devices whose site is inside a maintenance window (their
   assignment switches to the new version, their deadline starts);
3. time out devices past their deadline that never confirmed the model serving;
4. promote installed devices whose confirmation is older than the device soak to healthy;
5. judge the wave from its action counts (one aggregate query): the error threshold pauses,
   the success threshold starts the soak, the soak's end runs the canary analysis (pass →
   done; fail → paused and, with auto-rollback, the wave rolled back; inconclusive → the
   soak is extended once, then an approver decides);
6. after the last wave the rollout is complete.

The number of queries depends on the number of waves and sites, never on the devices.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from fleet.models import Site
from modelregistry import assignment_services as assignments
from opshero.actors import Actor
from opshero.errors import DomainError
from review.field_accuracy import review_counts
from telemetry.selectors import canary_group
from telemetry.sketch import LatencySketch

from . import analysis
from .models import CanaryVerdict, DeploymentAction, HoldKind, Rollout, Wave
from .planning import AnalysisSettings
from .services import current_wave, roll_back, start_rollout
from .transitions import transition_actions, transition_rollout, transition_wave
from .windows import window_open

log = logging.getLogger(__name__)

A = DeploymentAction.Status
R = Rollout.Status
W = Wave.Status
ENGINE = Actor.system("rollout engine")


def evaluate_rollouts(*, now: datetime | None = None) -> dict[str, int]:
    """Judge every approved, running or rolling-back rollout once; returns counts."""
    now = now or timezone.now()
    ids = list(
        Rollout.objects.filter(status__in=[R.APPROVED, R.RUNNING])
        .values_list("pk", flat=True)
        .order_by("pk")
    ) + list(
        Rollout.objects.filter(
            rollback_started_at__isnull=False, rollback_finished_at__isnull=True
        ).values_list("pk", flat=True)
    )
    judged = skipped = failed = 0
    for rollout_id in dict.fromkeys(ids):
        try:
            with transaction.atomic():
                rollout = _lock(rollout_id)
                if rollout is None:
                    skipped += 1
                    continue
                evaluate_rollout(rollout, now=now)
                judged += 1
        except DomainError as exc:  # one rollout's refusal never stops the others
            failed += 1
            log.warning("rollout %s not evaluated: %s", rollout_id, exc)
    return {"judged": judged, "skipped": skipped, "failed": failed}


def _lock(rollout_id: int) -> Rollout | None:
    query = Rollout.objects.select_related("organization", "model", "version")
    if connection.features.has_select_for_update_skip_locked:
        return query.select_for_update(skip_locked=True, of=("self",)).filter(pk=rollout_id).first()
    return query.filter(pk=rollout_id).first()  # SQLite: one writer at a time anyway


def evaluate_rollout(rollout: Rollout, *, now: datetime) -> None:
    """One tick of one rollout (inside a transaction holding its row lock)."""
    if rollout.rollback_started_at is not None and rollout.rollback_finished_at is None:
        _finish_rollback(rollout, now)
    if rollout.status == R.APPROVED:
        start_rollout(rollout=rollout, actor=ENGINE)
    if rollout.status != R.RUNNING:
        return
    settings = AnalysisSettings.from_dict(rollout.analysis_settings)
    for _ in range(len(rollout.waves.all()) + 1):  # empty waves finish in the same tick
        wave = current_wave(rollout)
        if wave is None:
            _complete_when_settled(rollout, settings, now)
            return
        if not _tick_wave(rollout, wave, settings, now):
            return


def _started(rollout: Rollout):
    """Actions of the waves that have started: a device left pending in a finished wave (its
    site's window was closed) is still sent the version when its window opens."""
    return DeploymentAction.objects.filter(
        rollout=rollout, wave__status__in=[W.RUNNING, W.SOAKING, W.DONE]
    )


def _progress_devices(rollout: Rollout, settings: AnalysisSettings, now: datetime) -> None:
    """Notify, time out and promote across every started wave."""
    actions = _started(rollout)
    _notify(rollout, actions, now)
    transition_actions(
        rollout=rollout,
        actions=actions.filter(status__in=[*DeploymentAction.IN_FLIGHT, A.INSTALLED]).filter(
            Q(confirmed_at__isnull=True) | Q(status__in=DeploymentAction.IN_FLIGHT),
            deadline_at__lt=now,
        ),
        to=A.TIMED_OUT,
        actor=ENGINE,
        reason="device deadline passed",
        reason_code="deadline",
    )
    soak = timedelta(minutes=settings.device_soak_minutes)
    transition_actions(
        rollout=rollout,
        actions=actions.filter(
            status__in=[A.INSTALLED, A.TIMED_OUT],
            installed_at__isnull=False,
            confirmed_at__gte=F("installed_at") + soak,
            confirmed_at__lte=now,
        ),
        to=A.HEALTHY,
        actor=ENGINE,
        reason="served inferences through the device soak",
        healthy_at=now,
    )


def _complete_when_settled(rollout: Rollout, settings: AnalysisSettings, now: datetime) -> None:
    """Every wave is done: the rollout completes once no device is still waiting for its
    maintenance window or on its way (each ends healthy, failed, timed out or rolled back)."""
    _progress_devices(rollout, settings, now)
    waiting = rollout.actions.filter(
        status__in=[A.PENDING, *DeploymentAction.IN_FLIGHT, A.INSTALLED]
    ).count()
    if waiting:
        return
    transition_rollout(
        rollout=rollout, to=R.COMPLETED, actor=ENGINE, reason="every wave done", finished_at=now
    )
    rollout.actions.filter(active=True).update(active=False)


def _tick_wave(rollout: Rollout, wave: Wave, settings: AnalysisSettings, now: datetime) -> bool:
    """Advance one wave; True when it finished and the next one may start this tick."""
    if wave.status == W.PENDING:
        transition_wave(wave=wave, to=W.RUNNING, actor=ENGINE, started_at=now)
    actions = DeploymentAction.objects.filter(wave=wave)
    _progress_devices(rollout, settings, now)
    counts = dict(actions.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    total = wave.device_count
    if total == 0:
        transition_wave(
            wave=wave, to=W.DONE, actor=ENGINE, finished_at=now, outcome="No devices in this wave."
        )
        return True
    bad = counts.get(A.FAILED, 0) + counts.get(A.TIMED_OUT, 0)
    healthy = counts.get(A.HEALTHY, 0)
    if not wave.errors_accepted and bad / total >= wave.error_threshold:
        reason = (
            f"Wave {wave.name}: {bad} of {total} devices failed or timed out "
            f"({bad / total:.0%} ≥ the {wave.error_threshold:.0%} error threshold)."
        )
        transition_rollout(
            rollout=rollout,
            to=R.PAUSED,
            actor=ENGINE,
            reason=reason,
            hold_reason=reason,
            hold_kind=HoldKind.ERRORS,
        )
        return False
    judged = total - bad if wave.errors_accepted else total
    if wave.status == W.RUNNING:
        if judged and healthy / judged >= wave.success_threshold:
            if wave.soak_minutes == 0:
                transition_wave(
                    wave=wave,
                    to=W.DONE,
                    actor=ENGINE,
                    finished_at=now,
                    outcome=(
                        f"{healthy} of {total} devices healthy; no soak, so no canary "
                        "analysis ran (not evaluated)."
                    ),
                )
                return True
            transition_wave(
                wave=wave,
                to=W.SOAKING,
                actor=ENGINE,
                soak_started_at=now,
                soak_until=now + timedelta(minutes=wave.soak_minutes),
                reason=f"{healthy} of {total} healthy",
            )
        return False
    if wave.status == W.SOAKING and wave.inconclusive_accepted:
        transition_wave(
            wave=wave,
            to=W.DONE,
            actor=ENGINE,
            finished_at=now,
            outcome="The canary analysis stayed inconclusive; an approver accepted it.",
        )
        return True
    if wave.status == W.SOAKING and now >= wave.soak_until:
        return _judge(rollout, wave, settings, now, counts)
    return False


def _notify(rollout: Rollout, actions, now: datetime) -> None:
    """Send pending devices of the started waves the new version where their site's
    maintenance window is open; their deadline is their wave's. One UPDATE per wave."""
    site_ids = list(actions.filter(status=A.PENDING).values_list("site_id", flat=True).distinct())
    if not site_ids:
        return
    sites = Site.objects.filter(pk__in=site_ids).values_list(
        "pk", "maintenance_windows", "time_zone"
    )
    open_sites = [pk for pk, windows, zone in sites if window_open(windows or [], zone, now)]
    if not open_sites:
        return
    due = list(
        actions.filter(status=A.PENDING, site_id__in=open_sites).values_list(
            "pk", "device_id", "wave_id"
        )
    )
    if not due:
        return
    waves = {wave.pk: wave for wave in rollout.waves.filter(pk__in={w for _, _, w in due})}
    for wave_id, wave in waves.items():
        # The same rows as ``due`` (pending actions move only here, under the rollout's lock),
        # named by their wave and sites rather than by thousands of ids.
        transition_actions(
            rollout=rollout,
            actions=actions.filter(wave_id=wave_id, status=A.PENDING, site_id__in=open_sites),
            to=A.NOTIFIED,
            actor=ENGINE,
            reason=f"wave {wave.name}",
            notified_at=now,
            deadline_at=now + timedelta(minutes=wave.device_deadline_minutes),
        )
    assignments.assign_version(
        organization=rollout.organization,
        model=rollout.model,
        version=rollout.version,
        device_ids=[device_id for _, device_id, _ in due],
        actor=ENGINE,
        rollout_id=rollout.pk,
        action_ids={device_id: pk for pk, device_id, _ in due},
    )


def _stats(group, *, devices: int) -> analysis.GroupStats:
    inference, health = group.inference, group.health
    latency = inference["latency"]
    return analysis.GroupStats(
        count=inference["count"],
        latency=latency if isinstance(latency, LatencySketch) and latency.count else None,
        confidence_sum=float(inference["confidence_sum"]),
        confidence_bins=tuple(inference["confidence_bins"]),
        class_counts=dict(inference["class_counts"]),
        health_samples=int(health["samples"]),
        throttled_samples=int(health["throttled_samples"]),
        devices=devices,
    )


def wave_comparison(rollout: Rollout, wave: Wave, now: datetime):
    """The wave's switched devices on the new version against a baseline over the soak:
    devices at the same sites still on the previous version ("peers"), or, when there are too
    few, the same devices over as long a window before they switched ("before")."""
    start = wave.soak_started_at or wave.started_at
    switched = list(
        DeploymentAction.objects.filter(
            wave=wave, status__in=DeploymentAction.SWITCHED
        ).values_list("device_id", "site_id", "previous_version__sha256")
    )
    device_ids = [device for device, _, _ in switched]
    previous_shas = sorted({sha for _, _, sha in switched if sha})
    sites = {site for _, site, _ in switched}
    candidate = canary_group(
        org=rollout.organization,
        device_ids=device_ids,
        model_sha256s=[rollout.version.sha256],
        since=start,
        until=now,
    )
    peers = list(
        DeploymentAction.objects.filter(
            rollout=rollout, site_id__in=sites, status=A.PENDING
        ).values_list("device_id", flat=True)
    )
    baseline = canary_group(
        org=rollout.organization,
        device_ids=peers,
        model_sha256s=previous_shas,
        since=start,
        until=now,
    )
    kind = "peers"
    minimum = AnalysisSettings.from_dict(rollout.analysis_settings).thresholds.min_events
    if baseline.inference["count"] < minimum:
        first = (
            DeploymentAction.objects.filter(wave=wave).aggregate(first=Min("notified_at"))["first"]
            or start
        )
        span = now - start
        baseline = canary_group(
            org=rollout.organization,
            device_ids=device_ids,
            model_sha256s=previous_shas,
            since=first - span - timedelta(minutes=1),
            until=first,
        )
        kind = "before"
    return candidate, baseline, kind, start, len(device_ids), len(peers)


#: How far back the previous version's reviews at the wave's sites count as its baseline.
REVIEW_BASELINE_DAYS = 30


def review_verdict(
    rollout: Rollout, wave: Wave, settings: AnalysisSettings, now: datetime
) -> analysis.CheckVerdict | None:
    """The reviewed-accuracy gate of a wave (None when the rollout leaves it off): reviews of
    the candidate at the wave's sites since the rollout started, against reviews of the
    versions the wave's devices ran before, at the same sites, over the last
    :data:`REVIEW_BASELINE_DAYS` days. Two queries (plus one for the wave's sites)."""
    if settings.thresholds.min_reviews == 0:
        return None
    rows = list(
        DeploymentAction.objects.filter(wave=wave)
        .values_list("site_id", "previous_version_id")
        .distinct()
    )
    site_ids = {site for site, _ in rows}
    previous = {version for _, version in rows if version and version != rollout.version_id}
    cand_correct, cand_n = review_counts(
        org=rollout.organization,
        site_ids=site_ids,
        version_ids=[rollout.version_id],
        since=rollout.started_at or rollout.created_at,
    )
    base_correct, base_n = (
        review_counts(
            org=rollout.organization,
            site_ids=site_ids,
            version_ids=previous,
            since=now - timedelta(days=REVIEW_BASELINE_DAYS),
        )
        if previous
        else (0, 0)
    )
    return analysis.reviewed_accuracy(
        candidate_correct=cand_correct,
        candidate_reviews=cand_n,
        baseline_correct=base_correct,
        baseline_reviews=base_n,
        limits=settings.thresholds,
    )


def _judge(rollout: Rollout, wave: Wave, settings: AnalysisSettings, now: datetime, counts) -> bool:
    candidate, baseline, kind, start, switched, _ = wave_comparison(rollout, wave, now)
    failed_loads = (
        DeploymentAction.objects.filter(wave=wave, status=A.FAILED)
        .exclude(reason_code="deadline")
        .count()
    )
    notified = wave.device_count - counts.get(A.PENDING, 0)
    verdicts = analysis.analyse(
        candidate=_stats(candidate, devices=switched),
        baseline=_stats(baseline, devices=baseline.devices),
        failed_loads=failed_loads,
        devices=notified,
        thresholds=settings.thresholds,
    )
    reviewed = review_verdict(rollout, wave, settings, now)
    stored = [*verdicts, reviewed] if reviewed is not None else verdicts
    # A gate that was not evaluated (too few reviews) is shown, but neither holds nor passes.
    verdicts = [v for v in stored if analysis.counts_in_overall(v)]
    round_ = 2 if wave.extended else 1
    for verdict in stored:
        CanaryVerdict.objects.update_or_create(
            wave=wave,
            round=round_,
            check_name=verdict.check,
            defaults={
                "rollout": rollout,
                "outcome": str(verdict.outcome),
                "summary": verdict.summary,
                "figures": verdict.figures,
                "baseline": kind,
                "window_start": start,
                "window_end": now,
                "evaluated_at": now,
            },
        )
    outcome = analysis.overall(verdicts)
    from opshero.services import record_audit_event

    from .audit import RolloutVerb

    record_audit_event(
        organization=rollout.organization,
        actor=ENGINE,
        verb=RolloutVerb.WAVE_ANALYSED,
        target=rollout,
        data={
            "wave": wave.name,
            "round": round_,
            "outcome": str(outcome),
            "baseline": kind,
            "checks": {
                v.check: str(v.outcome) if analysis.counts_in_overall(v) else "not evaluated"
                for v in stored
            },
        },
    )
    if outcome == analysis.Outcome.PASS or (
        outcome == analysis.Outcome.INCONCLUSIVE and wave.inconclusive_accepted
    ):
        transition_wave(
            wave=wave,
            to=W.DONE,
            actor=ENGINE,
            finished_at=now,
            outcome=f"Canary analysis {outcome} (round {round_}, baseline: {kind}).",
        )
        return True
    if outcome == analysis.Outcome.FAIL:
        failing = [v for v in verdicts if v.outcome == analysis.Outcome.FAIL]
        reason = f"Wave {wave.name}: canary analysis failed: " + " ".join(
            v.summary for v in failing
        )
        if settings.auto_rollback:
            try:
                with transaction.atomic():
                    roll_back(
                        rollout=rollout, actor=ENGINE, role=None, wave=wave, reason=reason[:900]
                    )
                return False
            except DomainError as exc:  # e.g. the previous version can no longer be re-issued
                reason = f"{reason} Automatic rollback failed: {exc}"
        transition_rollout(
            rollout=rollout,
            to=R.PAUSED,
            actor=ENGINE,
            reason=reason[:2000],
            hold_reason=reason,
            hold_kind=HoldKind.ANALYSIS,
        )
        return False
    if not wave.extended:
        wave.extended = True
        wave.soak_until = now + timedelta(minutes=max(wave.soak_minutes, 1))
        wave.save(update_fields=["extended", "soak_until"])
        return False
    reason = (
        f"Wave {wave.name}: the canary analysis stayed inconclusive after an extended soak; "
        "an approver decides (resume to accept, or roll back)."
    )
    transition_rollout(
        rollout=rollout,
        to=R.PAUSED,
        actor=ENGINE,
        reason=reason,
        hold_reason=reason,
        hold_kind=HoldKind.DECISION,
        needs_decision=True,
    )
    return False


def _finish_rollback(rollout: Rollout, now: datetime) -> None:
    """A rollback is finished when every device it asked to go back said it is back, or, for
    those that never answered, when the rollback deadline (the longest device deadline of the
    rollout's waves) has passed: they are counted as stragglers, and the rollback time is
    the time to the last device that did come back."""
    requested = rollout.actions.filter(rollback_requested_at__isnull=False)
    waiting = requested.exclude(status=A.ROLLED_BACK)
    deadline = timedelta(
        minutes=max(rollout.waves.values_list("device_deadline_minutes", flat=True), default=60)
    )
    stragglers = waiting.filter(rollback_requested_at__lte=now - deadline).count()
    if waiting.count() > stragglers:
        return
    last_back = requested.filter(status=A.ROLLED_BACK).aggregate(last=Max("rolled_back_at"))["last"]
    rollout.rollback_finished_at = last_back or now
    rollout.rollback_stragglers = stragglers
    rollout.save(update_fields=["rollback_finished_at", "rollback_stragglers"])
