"""Field accuracy reads: an organisation's reviews, operator thumbs and confidences per site x
model version, beside the validation run's lab figures. The maths is ``review.accuracy``.

Where each figure comes from (the page labels them so):

- *field: reviews*: ``Review`` rows (their copied site, version, prediction, confidence and
  sample reason), by when they were reviewed;
- *field: operator thumbs*: the gateways' thumbs up / down in the telemetry rollups;
- *field: estimated*: mean top-1 confidence (``telemetry.drift.estimated_accuracy``), the
  accuracy to expect if the model is calibrated;
- *lab: validation run*: accuracy and ECE of the version's latest finished validation run.

A site's review threshold is its own operating policy's (or its kind's default); a lane override
on some of its devices is not told apart here. The share of cases under the threshold comes from
the rollups' 20-bin confidence histogram, so the threshold is rounded to a bin edge (0.05) for
the histogram and for the reviewed cases alike, the two strata then matching exactly.

Fixed query count: reviews, telemetry rollups, sites with their policies, the model versions and
their validation runs: five queries whatever the number of reviews, sites or versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from fleet.models import Site
from fleet.selectors import policy_defaults
from modelregistry.models import ModelVersion, ValidationRun
from opshero.models import Organization
from telemetry.drift import CONFIDENCE_BINS, estimated_accuracy
from telemetry.selectors import FeedbackDay, feedback_days
from telemetry.series import low_confidence_share

from .accuracy import (
    MIN_REVIEWS,
    AccuracySummary,
    Proportion,
    ReviewedCase,
    percent,
    proportion,
    summarise,
    thumbs_accuracy,
)
from .models import Review

DEFAULT_DAYS = 30
MAX_DAYS = 365
#: Windows longer than this are drawn by week rather than by day.
DAILY_UP_TO_DAYS = 31


@dataclass(frozen=True)
class LabFigures:
    """The version's latest finished validation run's accuracy and ECE (a lab figure)."""

    run_number: int
    target: str
    accuracy: float | None
    ece: float | None
    finished_at: datetime | None

    @property
    def accuracy_shown(self) -> str:
        return percent(self.accuracy)


@dataclass
class ScopeFigures:
    """One site x model version: every accuracy figure there is, each with its provenance."""

    site_id: int
    site_name: str
    model_sha256: str
    model_name: str
    model_version: str
    version_id: int | None
    class_names: list[str]
    threshold: float  # the site's review threshold, rounded to a histogram bin edge
    summary: AccuracySummary
    thumbs: Proportion
    inferences: int
    estimated: float | None  # field: mean confidence
    low_share: float | None  # share of inferences under the threshold
    lab: LabFigures | None

    @property
    def reviews(self) -> int:
        return self.summary.reviewed.total

    @property
    def estimated_shown(self) -> str:
        return percent(self.estimated)

    @property
    def low_share_shown(self) -> str:
        return percent(self.low_share)

    @property
    def key(self) -> str:
        return f"{self.site_id}:{self.model_sha256}"


@dataclass(frozen=True)
class TimePoint:
    """One day (or week) of a scope: reviews, thumbs and estimated accuracy."""

    start: datetime
    reviewed: Proportion
    thumbs: Proportion
    estimated: float | None


@dataclass
class FieldAccuracy:
    since: datetime
    until: datetime
    days: int
    rows: list[ScopeFigures]
    selected: ScopeFigures | None
    series: list[TimePoint] = field(default_factory=list)
    step: str = "day"  # or "week"
    min_reviews: int = MIN_REVIEWS


def _bin_edge(threshold: float) -> float:
    return round(float(threshold) * CONFIDENCE_BINS) / CONFIDENCE_BINS


def _site_thresholds(org: Organization, site_ids: Iterable[int]) -> dict[int, tuple[str, float]]:
    found = {}
    for site in Site.objects.filter(organization=org, pk__in=set(site_ids)).select_related(
        "operating_policy"
    ):
        policy = getattr(site, "operating_policy", None)
        threshold = (
            policy.review_threshold
            if policy is not None
            else float(policy_defaults(site.kind)["review_threshold"])
        )
        found[site.pk] = (site.name, _bin_edge(threshold))
    return found


def lab_figures(*, org: Organization, version_ids: Iterable[int]) -> dict[int, LabFigures]:
    """Per version, the newest finished validation run that measured accuracy or ECE."""
    found: dict[int, LabFigures] = {}
    runs = (
        ValidationRun.objects.filter(
            version__model__organization=org,
            version_id__in=set(version_ids),
            finished_at__isnull=False,
            report__isnull=False,
        )
        .order_by("-finished_at", "-pk")
        .values_list("version_id", "number", "target__name", "report", "finished_at")
    )
    for version_id, number, target, report, finished_at in runs:
        if version_id in found:
            continue
        steps = {s.get("name"): s for s in (report or {}).get("steps", []) if isinstance(s, dict)}
        step = steps.get("calibration") or {}
        data = (step.get("data") or {}) if step.get("status") in {"passed", "failed"} else {}
        accuracy, ece = data.get("accuracy"), data.get("ece")
        if not isinstance(accuracy, int | float) and not isinstance(ece, int | float):
            continue
        found[version_id] = LabFigures(
            run_number=number,
            target=target or "",
            accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
            ece=float(ece) if isinstance(ece, int | float) else None,
            finished_at=finished_at,
        )
    return found


def _week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def field_accuracy_for_org(
    *,
    org: Organization,
    days: int = DEFAULT_DAYS,
    site_id: int | None = None,
    version_id: int | None = None,
    now: datetime | None = None,
    min_reviews: int = MIN_REVIEWS,
) -> FieldAccuracy:
    """Every site x version with reviews or inferences in the last ``days``, optionally only
    ``site_id`` and/or ``version_id``; the selected scope (the one row left, or the one with
    the most reviews) gets its figures over time."""
    now = now or timezone.now()
    days = max(1, min(int(days), MAX_DAYS))
    since = _day_start(now) - timedelta(days=days - 1)
    version_sha: str | None = None
    if version_id is not None:
        version_sha = (
            ModelVersion.objects.filter(model__organization=org, pk=version_id)
            .values_list("sha256", flat=True)
            .first()
        )
        if version_sha is None:
            return FieldAccuracy(since, now, days, [], None, min_reviews=min_reviews)
    reviews = Review.objects.filter(organization=org, reviewed_at__gte=since)
    if site_id is not None:
        reviews = reviews.filter(site_id=site_id)
    if version_sha is not None:
        reviews = reviews.filter(model_sha256=version_sha)
    review_rows = list(
        reviews.values_list(
            "site_id",
            "model_sha256",
            "model_version_id",
            "predicted_class",
            "true_class",
            "confidence",
            "sample_reason",
            "reviewed_at",
        )
    )
    telemetry = feedback_days(
        org=org,
        since=since,
        site_ids=None if site_id is None else [site_id],
        shas=None if version_sha is None else [version_sha],
    )
    return _assemble(
        org=org,
        since=since,
        now=now,
        days=days,
        review_rows=review_rows,
        telemetry=telemetry,
        min_reviews=min_reviews,
    )


def _assemble(
    *,
    org: Organization,
    since: datetime,
    now: datetime,
    days: int,
    review_rows: list[tuple],
    telemetry: list[FeedbackDay],
    min_reviews: int,
) -> FieldAccuracy:
    keys: dict[tuple[int, str], dict] = {}
    for site, sha, version_id, *_ in review_rows:
        keys.setdefault((site, sha), {"version_id": version_id})
    for day in telemetry:
        keys.setdefault((day.site_id, day.model_sha256), {"version_id": None})
    sites = _site_thresholds(org, {site for site, _ in keys})
    versions = {
        v.sha256: v
        for v in ModelVersion.objects.filter(
            model__organization=org, sha256__in={sha for _, sha in keys}
        ).select_related("model")
    }
    lab = lab_figures(org=org, version_ids=[v.pk for v in versions.values()])
    names = {(d.site_id, d.model_sha256): (d.model_name, d.model_version) for d in telemetry}

    rows: list[ScopeFigures] = []
    cases_by_key: dict[tuple[int, str], list[tuple[ReviewedCase, datetime]]] = {}
    days_by_key: dict[tuple[int, str], list[FeedbackDay]] = {}
    for day in telemetry:
        days_by_key.setdefault((day.site_id, day.model_sha256), []).append(day)
    for site, sha, _version_id, predicted, true, confidence, reason, reviewed_at in review_rows:
        threshold = sites.get(site, ("", None))[1]
        cases_by_key.setdefault((site, sha), []).append(
            (ReviewedCase(predicted, true, confidence, reason, threshold), reviewed_at)
        )
    for (site, sha), _info in keys.items():
        if site not in sites:
            continue  # a site of another organisation never reaches here; a deleted one may
        site_name, threshold = sites[site]
        version = versions.get(sha)
        class_names = (
            [str(n) for n in ((version.io_contract or {}).get("labels") or [])]
            if (version is not None)
            else []
        )
        model_name, model_version = (
            (version.model.name, version.version)
            if version is not None
            else names.get((site, sha), ("unregistered model", sha[:12]))
        )
        scope_days = days_by_key.get((site, sha), [])
        bins = [0] * CONFIDENCE_BINS
        count = up = down = 0
        conf_sum = 0.0
        for day in scope_days:
            count += day.count
            conf_sum += day.confidence_sum
            up += day.feedback_up
            down += day.feedback_down
            for i, value in enumerate(day.confidence_bins[:CONFIDENCE_BINS]):
                bins[i] += value
        cases = [case for case, _ in cases_by_key.get((site, sha), [])]
        low_share = low_confidence_share(bins, threshold) if count else None
        rows.append(
            ScopeFigures(
                site_id=site,
                site_name=site_name,
                model_sha256=sha,
                model_name=model_name,
                model_version=model_version,
                version_id=version.pk if version is not None else None,
                class_names=class_names,
                threshold=threshold,
                summary=summarise(
                    cases=cases,
                    class_names=class_names,
                    low_share=low_share,
                    min_total=min_reviews,
                ),
                thumbs=thumbs_accuracy(up=up, down=down, min_total=min_reviews),
                inferences=count,
                estimated=estimated_accuracy(confidence_sum=conf_sum, count=count),
                low_share=low_share,
                lab=lab.get(version.pk) if version is not None else None,
            )
        )
    rows.sort(key=lambda r: (-r.reviews, r.site_name, r.model_name, r.model_version))
    selected = rows[0] if rows else None
    step = "day" if days <= DAILY_UP_TO_DAYS else "week"
    series: list[TimePoint] = []
    if selected is not None:
        key = (selected.site_id, selected.model_sha256)
        series = _series(
            cases=cases_by_key.get(key, []),
            telemetry=days_by_key.get(key, []),
            since=since,
            now=now,
            step=step,
            min_reviews=min_reviews,
        )
    return FieldAccuracy(
        since=since,
        until=now,
        days=days,
        rows=rows,
        selected=selected,
        series=series,
        step=step,
        min_reviews=min_reviews,
    )


def _series(
    *,
    cases: list[tuple[ReviewedCase, datetime]],
    telemetry: list[FeedbackDay],
    since: datetime,
    now: datetime,
    step: str,
    min_reviews: int,
) -> list[TimePoint]:
    start_of = _day_start if step == "day" else _week_start
    width = timedelta(days=1 if step == "day" else 7)
    starts = []
    moment = start_of(since)
    while moment <= now:
        starts.append(moment)
        moment += width
    hits = dict.fromkeys(starts, 0)
    totals = dict.fromkeys(starts, 0)
    ups = dict.fromkeys(starts, 0)
    downs = dict.fromkeys(starts, 0)
    counts = dict.fromkeys(starts, 0)
    sums = dict.fromkeys(starts, 0.0)
    for case, reviewed_at in cases:
        bucket = start_of(reviewed_at)
        if bucket in totals:
            totals[bucket] += 1
            hits[bucket] += case.correct
    for day in telemetry:
        bucket = start_of(day.day)
        if bucket in counts:
            counts[bucket] += day.count
            sums[bucket] += day.confidence_sum
            ups[bucket] += day.feedback_up
            downs[bucket] += day.feedback_down
    return [
        TimePoint(
            start=s,
            reviewed=proportion(successes=hits[s], total=totals[s], min_total=min_reviews),
            thumbs=thumbs_accuracy(up=ups[s], down=downs[s], min_total=min_reviews),
            estimated=estimated_accuracy(confidence_sum=sums[s], count=counts[s]),
        )
        for s in starts
    ]


# --- for plan sources and rollout gates ---------------------------------------------------------


@dataclass(frozen=True)
class ReviewTally:
    """Reviews of one scope pooled (several sites, one or more versions): the figures a plan
    source or a rollout gate uses, with where they come from."""

    summary: AccuracySummary
    site_names: tuple[str, ...]
    device_count: int
    window_start: datetime | None
    window_end: datetime | None

    @property
    def reviews(self) -> int:
        return self.summary.reviewed.total


def review_tally(
    *,
    org: Organization,
    since: datetime | None = None,
    shas: Iterable[str] | None = None,
    version_ids: Iterable[int] | None = None,
    site_ids: Iterable[int] | None = None,
    until: datetime | None = None,
    min_reviews: int = MIN_REVIEWS,
) -> ReviewTally:
    """The reviews of ``org`` (optionally since/until, of some versions, at some sites) pooled,
    with P(low) pooled over the same sites' rollups at each site's own threshold. Four queries
    (reviews with their sites' devices, sites, rollups)."""
    reviews = Review.objects.filter(organization=org)
    if since is not None:
        reviews = reviews.filter(reviewed_at__gte=since)
    if until is not None:
        reviews = reviews.filter(reviewed_at__lt=until)
    if shas is not None:
        reviews = reviews.filter(model_sha256__in=list(shas))
    if version_ids is not None:
        reviews = reviews.filter(model_version_id__in=list(version_ids))
    if site_ids is not None:
        reviews = reviews.filter(site_id__in=list(site_ids))
    rows = list(
        reviews.values_list(
            "site_id",
            "model_sha256",
            "predicted_class",
            "true_class",
            "confidence",
            "sample_reason",
            "reviewed_at",
            "sample__device_id",
        )
    )
    sites = _site_thresholds(org, {r[0] for r in rows})
    cases = [
        ReviewedCase(predicted, true, confidence, reason, sites.get(site, ("", None))[1])
        for site, _sha, predicted, true, confidence, reason, _at, _device in rows
    ]
    low_share = None
    if rows:
        low = total = 0
        for day in feedback_days(
            org=org,
            since=since or min(r[6] for r in rows),
            site_ids=list(sites),
            shas={r[1] for r in rows},
        ):
            threshold = sites.get(day.site_id, ("", None))[1]
            if threshold is None or not day.count:
                continue
            share = low_confidence_share(day.confidence_bins, threshold)
            low += round((share or 0.0) * sum(day.confidence_bins))
            total += sum(day.confidence_bins)
        low_share = low / total if total else None
    class_names: list[str] = []
    return ReviewTally(
        summary=summarise(
            cases=cases, class_names=class_names, low_share=low_share, min_total=min_reviews
        ),
        site_names=tuple(sorted(name for name, _ in sites.values())),
        device_count=len({r[7] for r in rows}),
        window_start=min((r[6] for r in rows), default=None),
        window_end=max((r[6] for r in rows), default=None),
    )


def review_counts(
    *,
    org: Organization,
    site_ids: Iterable[int],
    version_ids: Iterable[int],
    since: datetime | None = None,
) -> tuple[int, int]:
    """(correct, reviews) of ``org``'s reviews of some versions at some sites, in one query:
    what a rollout gate compares."""
    from django.db.models import Count, Q

    reviews = Review.objects.filter(
        organization=org, site_id__in=list(site_ids), model_version_id__in=list(version_ids)
    )
    if since is not None:
        reviews = reviews.filter(reviewed_at__gte=since)
    counts = reviews.aggregate(
        total=Count("pk"), correct=Count("pk", filter=Q(verdict=Review.Verdict.CONFIRMED))
    )
    return int(counts["correct"] or 0), int(counts["total"] or 0)
