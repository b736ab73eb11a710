"""The signal evaluator: closed windows of the rollups judged against baselines and budgets.

For every scope with new data (``SignalCursor``: a device or a site, and a model version; or a
device's health) the evaluator walks the closed windows after the last one it judged, one at
a time and in order, so a week of backfilled history is judged exactly as if it had arrived
live. Per window of the model's ``window_minutes`` it judges class-mix drift and confidence
drift (``telemetry.drift``, from the rollups' histograms) against the validation run's
``drift_baseline`` or, where the version has none, against the scope's first
``baseline_days`` of data, and the field P95 against the model's latency budget; per
ten-minute window of a device's health, thermal throttling. Each judgement is stored
(``SignalEvaluation``, "not evaluated" with its reason when it could not be judged) and moves
the breach streak: ``consecutive_breaches`` in a row open an alert, a clear window resolves it.

A window is closed when the scope has data after its end (gateways deliver in order, late
batches included) and none of its hours is still waiting for a rollup rebuild. Data that
arrives for a window already judged updates the rollups and pages, not the judgement.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connections, transaction
from django.utils import timezone

from fleet.models import Device, Site
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.errors import Conflict

from . import alerts
from .drift import (
    DEFAULT_POLICY,
    MinuteHealth,
    SignalPolicyValues,
    Verdict,
    baseline_from_validation,
    class_drift,
    confidence_drift,
    latency_budget,
    next_alert_action,
    throttling,
)
from .models import (
    AggregateMark,
    Alert,
    HealthRollup,
    InferenceRollup,
    Level,
    Resolution,
    RollupMark,
    SignalCursor,
    SignalEvaluation,
    SignalKind,
)
from .rollups import HOUR, merge_inference
from .routers import telemetry_db

logger = logging.getLogger(__name__)

THROTTLING_WINDOW = timedelta(minutes=10)
MODEL_KINDS = (SignalKind.CLASS_DRIFT, SignalKind.CONFIDENCE_DRIFT, SignalKind.LATENCY_BUDGET)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday at midnight: windows align to it


def align_down(moment: datetime, width: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // width) * width


def align_up(moment: datetime, width: timedelta) -> datetime:
    down = align_down(moment, width)
    return down if down == moment else down + width


# --- What the registry knows about an artifact ---------------------------------------------------


@dataclass(frozen=True)
class ArtifactProfile:
    """A model version as the signals need it (looked up by artifact SHA-256)."""

    model_id: int
    model_name: str
    version: str
    labels: tuple[str, ...]
    latency_budget_ms: float | None
    policy: SignalPolicyValues
    baseline: tuple[dict[str, float], list[int]] | None  # the validation run's, if usable


def _validation_baselines(version_ids: Iterable[int]) -> dict[int, dict]:
    """The newest measured validation run's ``drift_baseline`` per version (if any)."""
    found: dict[int, dict] = {}
    runs = (
        ValidationRun.objects.filter(version_id__in=set(version_ids))
        .filter(status__in=ValidationRun.MEASURED)
        .order_by("version_id", "-created_at")
        .values_list("version_id", "report", "steps")
    )
    for version_id, report, steps in runs:
        if version_id in found:
            continue
        for step in (report or {}).get("steps") or steps or []:
            data = step.get("data") or {}
            if step.get("name") == "calibration" and data.get("drift_baseline"):
                found[version_id] = data["drift_baseline"]
                break
    return found


def artifact_profiles(*, organization_id: int, shas: Iterable[str]) -> dict[str, ArtifactProfile]:
    wanted = {sha for sha in shas if sha}
    if not wanted:
        return {}
    versions = list(
        ModelVersion.objects.filter(model__organization_id=organization_id, sha256__in=wanted)
        .select_related("model", "model__signal_policy")
        .order_by("pk")
    )
    baselines = _validation_baselines(v.pk for v in versions)
    profiles: dict[str, ArtifactProfile] = {}
    for version in versions:
        model = version.model
        labels = tuple(str(name) for name in (version.io_contract or {}).get("labels") or [])
        policy_row = getattr(model, "signal_policy", None)
        try:
            policy = SignalPolicyValues.from_object(policy_row) if policy_row else DEFAULT_POLICY
        except ValueError:  # saved around SignalPolicy.clean(): judge with the defaults
            logger.exception("signal policy of model %s is invalid; using the defaults", model.pk)
            policy = DEFAULT_POLICY
        baseline = baselines.get(version.pk)
        profiles.setdefault(
            version.sha256,
            ArtifactProfile(
                model_id=model.pk,
                model_name=model.name,
                version=version.version,
                labels=labels,
                latency_budget_ms=model.latency_budget_ms,
                policy=policy,
                baseline=baseline_from_validation(baseline, labels) if baseline else None,
            ),
        )
    return profiles


# --- Judging windows -----------------------------------------------------------------------------


@dataclass
class Judgement:
    kind: str
    window_start: datetime
    window_end: datetime
    verdict: Verdict
    baseline: str


@dataclass
class _Org:
    organization_id: int
    pending_hours: dict[int, set[datetime]]  # device -> hours still to be rolled up
    pending_sites: dict[int, set[datetime]]  # site -> hours whose site rows are still to merge
    profiles: dict[str, ArtifactProfile]
    live: dict[tuple, Alert]
    devices: dict[int, str] = field(default_factory=dict)
    sites: dict[int, str] = field(default_factory=dict)


def _window_is_settled(org: _Org, cursor: SignalCursor, start: datetime, end: datetime) -> bool:
    if cursor.level == Level.SITE:
        hours = org.pending_sites.get(cursor.site_id, set())
    else:
        hours = org.pending_hours.get(cursor.device_id, set())
    hour = align_down(start, HOUR)
    while hour < end:
        if hour in hours:
            return False
        hour += HOUR
    return True


def _scope_rows(model, cursor: SignalCursor, *, resolution: int, start, end, db) -> list:
    rows = model.objects.using(db).filter(
        organization_id=cursor.organization_id,
        level=cursor.level,
        site_id=cursor.site_id,
        device_id=cursor.device_id,
        resolution=resolution,
        bucket_start__gte=start,
        bucket_start__lt=end,
    )
    if model is InferenceRollup:
        rows = rows.filter(model_sha256=cursor.model_sha256)
    return list(rows.order_by("bucket_start"))


def _first_days_baseline(
    cursor: SignalCursor, policy: SignalPolicyValues, db: str
) -> tuple[tuple[dict[str, float], list[int]], datetime]:
    """The scope's own first ``baseline_days`` (from its first event) as the reference."""
    start = align_down(cursor.first_data, HOUR)
    end = align_up(cursor.first_data + timedelta(days=policy.baseline_days), HOUR)
    rows = _scope_rows(
        InferenceRollup, cursor, resolution=Resolution.HOUR, start=start, end=end, db=db
    )
    merged = merge_inference(rows)
    return (
        {k: float(v) for k, v in merged["class_counts"].items()},
        merged["confidence_bins"],
    ), end


def judge_model_windows(
    *,
    cursor: SignalCursor,
    profile: ArtifactProfile | None,
    org: _Org,
    now: datetime,
    db: str,
    max_windows: int,
) -> list[Judgement]:
    policy = profile.policy if profile else DEFAULT_POLICY
    width = timedelta(minutes=policy.window_minutes)
    if profile is not None and profile.baseline is not None:
        baseline, baseline_name, earliest = profile.baseline, "validation", cursor.first_data
    else:
        (counts, bins), earliest = _first_days_baseline(cursor, policy, db)
        baseline, baseline_name = (counts, bins), "first days"
    start = cursor.evaluated_until or align_up(earliest, width)
    start = max(start, align_down(cursor.first_data, width))
    windows: list[tuple[datetime, datetime]] = []
    while len(windows) < max_windows:
        end = start + width
        if end >= cursor.latest_data or end > now:
            break
        if not _window_is_settled(org, cursor, start, end):
            break
        windows.append((start, end))
        start = end
    if not windows:
        return []
    hourly = policy.window_minutes % 60 == 0 and windows[0][0] == align_down(windows[0][0], HOUR)
    rows = _scope_rows(
        InferenceRollup,
        cursor,
        resolution=Resolution.HOUR if hourly else Resolution.MINUTE,
        start=windows[0][0],
        end=windows[-1][1],
        db=db,
    )
    judgements: list[Judgement] = []
    position = 0
    labels = profile.labels if profile else ()
    for window_start, window_end in windows:
        members = []
        while position < len(rows) and rows[position].bucket_start < window_end:
            if rows[position].bucket_start >= window_start:
                members.append(rows[position])
            position += 1
        merged = merge_inference(members)
        events = merged["count"]
        window_labels = labels or tuple(sorted({*baseline[0], *merged["class_counts"]}))
        verdicts = {
            SignalKind.CLASS_DRIFT: class_drift(
                baseline_counts=baseline[0],
                window_counts=merged["class_counts"],
                labels=window_labels,
                policy=policy,
            ),
            SignalKind.CONFIDENCE_DRIFT: confidence_drift(
                baseline_bins=baseline[1], window_bins=merged["confidence_bins"], policy=policy
            ),
            SignalKind.LATENCY_BUDGET: latency_budget(
                p95_ms=merged["latency"].quantile(0.95),
                p50_ms=merged["latency"].quantile(0.5),
                events=events,
                budget_ms=profile.latency_budget_ms if profile else None,
            ),
        }
        for kind, verdict in verdicts.items():
            name = "" if kind is SignalKind.LATENCY_BUDGET else baseline_name
            judgements.append(Judgement(kind, window_start, window_end, verdict, name))
    return judgements


def judge_health_windows(
    *, cursor: SignalCursor, org: _Org, now: datetime, db: str, max_windows: int
) -> list[Judgement]:
    width = THROTTLING_WINDOW
    start = cursor.evaluated_until or align_down(cursor.first_data, width)
    windows: list[tuple[datetime, datetime]] = []
    while len(windows) < max_windows:
        end = start + width
        if (
            end >= cursor.latest_data
            or end > now
            or not _window_is_settled(org, cursor, start, end)
        ):
            break
        windows.append((start, end))
        start = end
    if not windows:
        return []
    rows = _scope_rows(
        HealthRollup,
        cursor,
        resolution=Resolution.MINUTE,
        start=windows[0][0],
        end=windows[-1][1],
        db=db,
    )
    by_minute = {row.bucket_start: row for row in rows}
    judgements = []
    for window_start, window_end in windows:
        minutes = []
        moment = window_start
        while moment < window_end:
            row = by_minute.get(moment)
            minutes.append(
                MinuteHealth(
                    samples=row.samples if row else 0,
                    throttled_samples=row.throttled_samples if row else 0,
                    temperature_count=row.temperature_count if row else 0,
                    temperature_sum=row.temperature_sum if row else 0.0,
                    temperature_max=row.temperature_max if row else None,
                )
            )
            moment += timedelta(minutes=1)
        verdict = throttling(minutes=minutes, policy=DEFAULT_POLICY)
        judgements.append(Judgement(SignalKind.THROTTLING, window_start, window_end, verdict, ""))
    return judgements


# --- Alerts from judgements ----------------------------------------------------------------------


def _alert_key(cursor: SignalCursor, kind: str, model_id: int | None) -> tuple:
    # Per version (sha), not per model: a canary v2 drifting beside a clear v1 must not have
    # v1's clear windows resolve v2's alert.
    device_id = cursor.device_id if cursor.level == Level.DEVICE else None
    return (kind, cursor.level, cursor.site_id, device_id, model_id, cursor.model_sha256)


def _summary(org: _Org, cursor: SignalCursor, kind: str, profile, verdict: Verdict, streak: int):
    where = (
        org.devices.get(cursor.device_id, f"device {cursor.device_id}")
        if cursor.level == Level.DEVICE
        else f"site {org.sites.get(cursor.site_id, cursor.site_id)}"
    )
    model = f" · {profile.model_name} {profile.version}" if profile else ""
    return f"{SignalKind(kind).label} on {where}{model}: {verdict.reason} ({streak} windows)"


def _apply_alerts(org: _Org, cursor: SignalCursor, judgements: Sequence[Judgement]) -> None:
    profile = org.profiles.get(cursor.model_sha256)
    policy = profile.policy if profile else DEFAULT_POLICY
    streaks = dict(cursor.streaks or {})
    model_id = profile.model_id if profile else None
    for judgement in judgements:
        kind = judgement.kind
        key = _alert_key(cursor, kind, model_id)
        live = org.live.get(key)
        streak, action = next_alert_action(
            streak=int(streaks.get(kind, 0)),
            verdict=judgement.verdict,
            alert_live=live is not None,
            policy=policy,
        )
        streaks[kind] = streak
        gone = cursor.site_id not in org.sites or (
            cursor.level == Level.DEVICE and cursor.device_id not in org.devices
        )
        if action is None or gone:  # a deleted site or device gets no alert
            continue
        verdict = judgement.verdict
        if action in ("open", "update"):
            alert, _ = alerts.raise_alert(
                organization_id=org.organization_id,
                kind=kind,
                level=cursor.level,
                site_id=cursor.site_id,
                device_id=key[3],
                model_id=model_id,
                model_sha256=cursor.model_sha256,
                model_version=profile.version if profile else "",
                severity=Alert.Severity.WARNING if verdict.warning else Alert.Severity.CRITICAL,
                summary=_summary(org, cursor, kind, profile, verdict, streak),
                detail={
                    "window_start": judgement.window_start.isoformat(),
                    "window_end": judgement.window_end.isoformat(),
                    "statistic": verdict.statistic,
                    "value": verdict.value,
                    "threshold": verdict.threshold,
                    "statistics": verdict.statistics,
                    "baseline": judgement.baseline,
                },
                breach_at=judgement.window_end,
                breaches=streak,
            )
            org.live[key] = alert
        elif action == "resolve" and live is not None:
            with contextlib.suppress(Conflict):  # a person resolved it meanwhile
                alerts.resolve_alert(
                    alert=live,
                    actor=Actor.system("signal evaluator"),
                    resolution=f"cleared in the window ending "
                    f"{judgement.window_end:%Y-%m-%d %H:%M} UTC: {verdict.reason}",
                )
            del org.live[key]
    cursor.streaks = streaks


def _evaluation(cursor: SignalCursor, judgement: Judgement) -> SignalEvaluation:
    verdict = judgement.verdict
    return SignalEvaluation(
        organization_id=cursor.organization_id,
        kind=judgement.kind,
        level=cursor.level,
        site_id=cursor.site_id,
        device_id=cursor.device_id,
        model_sha256=cursor.model_sha256,
        window_start=judgement.window_start,
        window_end=judgement.window_end,
        events=verdict.events,
        evaluated=verdict.evaluated,
        breached=verdict.breached,
        warning=verdict.warning,
        value=verdict.value,
        threshold=verdict.threshold,
        statistic=verdict.statistic,
        statistics=verdict.statistics,
        baseline=judgement.baseline,
        reason=verdict.reason[:300],
    )


def _load_org(organization_id: int, cursors: Sequence[SignalCursor], db: str) -> _Org:
    pending: dict[int, set[datetime]] = defaultdict(set)
    for device_id, hour in (
        RollupMark.objects.using(db)
        .filter(organization_id=organization_id)
        .values_list("device_id", "hour")
    ):
        pending[device_id].add(hour)
    pending_sites: dict[int, set[datetime]] = defaultdict(set)
    # A site window waits for its own devices' marks, not for every device of the organisation.
    for device_id, site_id in Device.objects.filter(
        organization_id=organization_id, pk__in=list(pending)
    ).values_list("pk", "site_id"):
        pending_sites[site_id].update(pending[device_id])
    for site_id, hour in (
        AggregateMark.objects.using(db)
        .filter(organization_id=organization_id, site_id__gt=0)
        .values_list("site_id", "hour")
    ):
        pending_sites[site_id].add(hour)
    live = {
        (a.kind, a.level, a.site_id, a.device_id, a.model_id, a.model_sha256): a
        for a in Alert.objects.filter(organization_id=organization_id, status__in=alerts.LIVE)
    }
    org = _Org(
        organization_id=organization_id,
        pending_hours=pending,
        pending_sites=pending_sites,
        profiles=artifact_profiles(
            organization_id=organization_id, shas={c.model_sha256 for c in cursors}
        ),
        live=live,
    )
    org.devices = dict(
        Device.objects.filter(
            organization_id=organization_id, pk__in={c.device_id for c in cursors}
        ).values_list("pk", "name")
    )
    org.sites = dict(
        Site.objects.filter(
            organization_id=organization_id, pk__in={c.site_id for c in cursors}
        ).values_list("pk", "name")
    )
    return org


def evaluate_signals(
    *, now: datetime | None = None, budget_s: float = 20.0, max_windows: int = 500
) -> int:
    """Judge the closed windows of every scope with new data; returns the judgements stored."""
    now = now or timezone.now()
    db = telemetry_db()
    started = time.monotonic()
    cursors = list(
        SignalCursor.objects.using(db).order_by("organization_id", "level", "device_id", "pk")
    )
    by_org: dict[int, list[SignalCursor]] = defaultdict(list)
    for cursor in cursors:
        if cursor.evaluated_until is None or cursor.latest_data > cursor.evaluated_until:
            by_org[cursor.organization_id].append(cursor)
    stored = 0
    for organization_id, org_cursors in by_org.items():
        try:
            stored += _evaluate_locked(
                organization_id, org_cursors, db, now, started, budget_s, max_windows
            )
        except Exception:  # one organisation's bad row must not stop every other's signals
            logger.exception("signals of organisation %s failed", organization_id)
    return stored


def _evaluate_locked(organization_id, org_cursors, db, now, started, budget_s, max_windows):
    with _evaluator_lock(organization_id, db) as held:
        if not held:
            return 0
        return _evaluate_org(organization_id, org_cursors, db, now, started, budget_s, max_windows)


@contextmanager
def _evaluator_lock(organization_id: int, db: str):
    """One evaluator per organisation at a time (a session advisory lock on PostgreSQL).

    Two evaluators judging the same windows would both move the streaks, and the second could
    reopen an alert the first has just resolved. The lock is the session's, so a worker that
    dies releases it with its connection.
    """
    connection = connections[db]
    if connection.vendor != "postgresql":
        yield True
        return
    key = int.from_bytes(
        hashlib.blake2b(f"signals:{organization_id}".encode(), digest_size=8).digest(),
        "big",
        signed=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _evaluate_org(organization_id, org_cursors, db, now, started, budget_s, max_windows) -> int:
    stored = 0
    # Re-read the cursors under the lock: another evaluator may have moved them meanwhile.
    org_cursors = list(
        SignalCursor.objects.using(db)
        .filter(pk__in=[c.pk for c in org_cursors])
        .order_by("level", "device_id", "pk")
    )
    org = _load_org(organization_id, org_cursors, db)
    for cursor in org_cursors:
        if time.monotonic() - started > budget_s:
            return stored
        if cursor.model_sha256:
            judgements = judge_model_windows(
                cursor=cursor,
                profile=org.profiles.get(cursor.model_sha256),
                org=org,
                now=now,
                db=db,
                max_windows=max_windows,
            )
        elif cursor.level == Level.DEVICE:
            judgements = judge_health_windows(
                cursor=cursor, org=org, now=now, db=db, max_windows=max_windows
            )
        else:
            continue
        if not judgements:
            continue
        _apply_alerts(org, cursor, judgements)
        cursor.evaluated_until = max(j.window_end for j in judgements)
        with transaction.atomic(using=db):
            SignalEvaluation.objects.using(db).bulk_create(
                [_evaluation(cursor, j) for j in judgements],
                batch_size=500,
                ignore_conflicts=True,
            )
            SignalCursor.objects.using(db).filter(pk=cursor.pk).update(
                evaluated_until=cursor.evaluated_until, streaks=cursor.streaks
            )
        stored += len(judgements)
    return stored


def signal_kinds_for(level: int, model_sha256: str) -> tuple[str, ...]:
    if model_sha256:
        return tuple(MODEL_KINDS)
    return (SignalKind.THROTTLING,) if level == Level.DEVICE else ()


def latest_evaluations(
    *, organization_id: int, kinds: Iterable[str] | None = None, since: datetime | None = None
) -> Mapping[tuple, SignalEvaluation]:
    """The newest evaluation per (kind, level, site, device, model) — for pages and rollouts."""
    rows = SignalEvaluation.objects.using(telemetry_db()).filter(organization_id=organization_id)
    if kinds:
        rows = rows.filter(kind__in=list(kinds))
    if since is not None:
        rows = rows.filter(window_end__gte=since)
    latest: dict[tuple, SignalEvaluation] = {}
    for row in rows.order_by("window_end"):
        latest[(row.kind, row.level, row.site_id, row.device_id, row.model_sha256)] = row
    return latest
