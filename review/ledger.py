"""What left the sites and what was deleted: reads of the data-sent ledger
(``telemetry.models.DataSent``) with its chart, and of the deletion report.

The ledger lives in the telemetry store (possibly its own database), counted on arrival by
``telemetry.services.record_data_sent``: telemetry batches as sent and evidence samples as
uploaded. Reads here are scoped to one organisation and a window of whole UTC days; a page
makes two queries whatever the number of sites or days (the sites, then the ledger rows).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from fleet.device_csv import neutralise_cell
from fleet.models import Site
from opshero.models import Organization
from protocol import evidence as wire
from telemetry.charts import SERIES_COLOURS, empty_figure
from telemetry.models import DataSent
from telemetry.routers import telemetry_db

from .models import EvidenceDeletionRun, EvidenceSample, LabelledExport
from .selectors import evidence_settings_for

DAYS_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
# Sites charted one by one (each with its kinds); the rest are summed as "other sites".
CHARTED_SITES = 8
CSV_COLUMNS = ("site", "day", "kind", "records", "bytes", "requests")
KIND_LABELS = {str(value): str(label) for value, label in DataSent.Kind.choices}


@dataclass(frozen=True)
class LedgerRow:
    """One site's records and bytes of one kind on one UTC day."""

    site_id: int
    site_name: str
    day: date
    kind: str
    records: int
    bytes: int
    requests: int


@dataclass
class LedgerTotal:
    """What one site (or the whole organisation, ``site_id`` None) sent of one kind."""

    site_id: int | None
    site_name: str
    kind: str
    records: int = 0
    bytes: int = 0
    requests: int = 0

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass
class Ledger:
    """The window ``[start, end]`` (UTC days, both included) of one organisation's ledger."""

    start: date
    end: date
    days: int
    site: Site | None
    sites: list[Site]
    rows: list[LedgerRow] = field(default_factory=list)
    totals: list[LedgerTotal] = field(default_factory=list)
    overall: list[LedgerTotal] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(total.bytes for total in self.overall)

    @property
    def total_records(self) -> int:
        return sum(total.records for total in self.overall)


def clean_days(value: Any) -> int:
    """The window asked for; anything but the offered choices is the default."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return days if days in DAYS_CHOICES else DEFAULT_DAYS


def data_sent_for_org(
    *, org: Organization, days: int = DEFAULT_DAYS, site_id: Any = None, today: date | None = None
) -> Ledger:
    """The organisation's ledger over the last ``days`` UTC days (today included), optionally one
    of its sites (a site id that is not the organisation's is ignored: all sites are shown)."""
    days = clean_days(days)
    end = today or timezone.now().astimezone(UTC).date()
    start = end - timedelta(days=days - 1)
    sites = list(Site.objects.filter(organization=org).order_by("name", "pk"))
    by_id = {site.pk: site for site in sites}
    try:
        chosen = by_id.get(int(site_id)) if site_id not in (None, "") else None
    except (TypeError, ValueError):
        chosen = None
    query = DataSent.objects.using(telemetry_db()).filter(
        organization_id=org.pk, day__gte=start, day__lte=end
    )
    if chosen is not None:
        query = query.filter(site_id=chosen.pk)
    rows = [
        LedgerRow(
            site_id=site_id_,
            site_name=_site_name(by_id, site_id_),
            day=day,
            kind=kind,
            records=records,
            bytes=size,
            requests=requests,
        )
        for site_id_, day, kind, records, size, requests in query.order_by(
            "day", "site_id", "kind"
        ).values_list("site_id", "day", "kind", "records", "bytes", "requests")
    ]
    totals: dict[tuple[int, str], LedgerTotal] = {}
    overall: dict[str, LedgerTotal] = {}
    for row in rows:
        for bucket in (
            totals.setdefault(
                (row.site_id, row.kind), LedgerTotal(row.site_id, row.site_name, row.kind)
            ),
            overall.setdefault(row.kind, LedgerTotal(None, "All sites", row.kind)),
        ):
            bucket.records += row.records
            bucket.bytes += row.bytes
            bucket.requests += row.requests
    return Ledger(
        start=start,
        end=end,
        days=days,
        site=chosen,
        sites=sites,
        rows=rows,
        totals=sorted(totals.values(), key=lambda t: (t.site_name.lower(), t.site_id, t.kind)),
        overall=[overall[kind] for kind in sorted(overall)],
    )


def _site_name(by_id: dict[int, Site], site_id: int) -> str:
    site = by_id.get(site_id)
    return site.name if site is not None else f"site {site_id} (removed)"


def ledger_csv(ledger: Ledger) -> str:
    """The ledger's rows as CSV (one a site, day and kind), cells safe for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in ledger.rows:
        writer.writerow(
            [
                neutralise_cell(row.site_name),
                row.day.isoformat(),
                row.kind,
                row.records,
                row.bytes,
                row.requests,
            ]
        )
    return out.getvalue()


def ledger_figure(ledger: Ledger) -> dict[str, Any]:
    """Bytes received per UTC day, stacked by site and kind (a Plotly figure as a plain dict).

    The busiest ``CHARTED_SITES`` sites get their own bars; the others are summed, so the
    legend stays readable for a large fleet. Every day of the window is on the axis."""
    title = "Bytes received from the sites per day (UTC)"
    if not ledger.rows:
        return empty_figure(title, "nothing was received in this window")
    days = [ledger.start + timedelta(days=i) for i in range((ledger.end - ledger.start).days + 1)]
    by_site: dict[int, int] = {}
    for row in ledger.rows:
        by_site[row.site_id] = by_site.get(row.site_id, 0) + row.bytes
    charted = sorted(by_site, key=lambda s: (-by_site[s], s))[:CHARTED_SITES]
    names = {row.site_id: row.site_name for row in ledger.rows}
    series: dict[tuple[str, str], dict[date, int]] = {}
    order: list[tuple[str, str]] = []
    for site_id in charted:
        for kind in (DataSent.Kind.EVENTS, DataSent.Kind.EVIDENCE):
            order.append((names[site_id], str(kind)))
    for kind in (DataSent.Kind.EVENTS, DataSent.Kind.EVIDENCE):
        order.append(("Other sites", str(kind)))
    for row in ledger.rows:
        name = row.site_name if row.site_id in charted else "Other sites"
        daily = series.setdefault((name, row.kind), {})
        daily[row.day] = daily.get(row.day, 0) + row.bytes
    data = []
    for index, key in enumerate(k for k in order if k in series):
        name, kind = key
        colour = SERIES_COLOURS[(index // 2) % len(SERIES_COLOURS)]
        data.append(
            {
                "type": "bar",
                "name": f"{name} · {KIND_LABELS.get(kind, kind).lower()}",
                "x": [day.isoformat() for day in days],
                "y": [series[key].get(day, 0) for day in days],
                "marker": {
                    "color": colour,
                    # Evidence hatched over its site's colour: told apart without a second hue.
                    **({"pattern": {"shape": "/"}} if kind == DataSent.Kind.EVIDENCE else {}),
                },
                "hovertemplate": "%{x}: %{y:,} bytes<extra>%{fullData.name}</extra>",
            }
        )
    layout = {
        "title": {"text": title, "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "barmode": "stack",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "height": 340,
        "xaxis": {"type": "date", "dtick": 86400000 if len(days) <= 31 else None},
        "yaxis": {"title": {"text": "bytes"}, "rangemode": "tozero"},
    }
    if layout["xaxis"]["dtick"] is None:
        del layout["xaxis"]["dtick"]
    return {"data": data, "layout": layout, "config": {"displayModeBar": False, "responsive": True}}


# --- what was deleted: the deletion report -------------------------------------------------------


@dataclass(frozen=True)
class DeletionSchedule:
    """The organisation's retention now, and what it will delete soon."""

    retention_days: int
    clinic_retention_days: int
    is_default: bool
    updated_by: str
    updated_at: datetime | None
    held: int
    due_24h: int
    due_7d: int
    pending: int
    unmatched_due_24h: int
    exports: int


def deletion_runs_for_org(*, org: Organization) -> QuerySet[EvidenceDeletionRun]:
    """The organisation's deletion runs, newest first (the deletion report)."""
    return EvidenceDeletionRun.objects.filter(organization=org).order_by("-ran_at", "-pk")


def deletion_schedule_for_org(
    *, org: Organization, now: datetime | None = None
) -> DeletionSchedule:
    """The retention schedule and the samples it deletes in the next day and week (one aggregate:
    samples held, due within 24 h and 7 days, pending and due as unmatched within 24 h)."""
    now = now or timezone.now()
    current = evidence_settings_for(org=org)
    held_statuses = [
        EvidenceSample.Status.PENDING,
        EvidenceSample.Status.LINKED,
        EvidenceSample.Status.REVIEWED,
    ]
    pending = Q(status=EvidenceSample.Status.PENDING)
    unmatched_cutoff = now - timedelta(hours=wire.LINK_WINDOW_HOURS) + timedelta(hours=24)
    counts = EvidenceSample.objects.filter(organization=org, status__in=held_statuses).aggregate(
        held=Count("pk"),
        due_24h=Count("pk", filter=Q(delete_after__lte=now + timedelta(hours=24))),
        due_7d=Count("pk", filter=Q(delete_after__lte=now + timedelta(days=7))),
        pending=Count("pk", filter=pending),
        unmatched_due_24h=Count("pk", filter=pending & Q(received_at__lt=unmatched_cutoff)),
    )
    user = current.updated_by if current.pk else None
    return DeletionSchedule(
        retention_days=current.retention_days,
        clinic_retention_days=current.clinic_retention_days,
        is_default=current.pk is None,
        updated_by=(user.get_username() if user is not None else ""),
        updated_at=current.updated_at if current.pk else None,
        held=counts["held"],
        due_24h=counts["due_24h"],
        due_7d=counts["due_7d"],
        pending=counts["pending"],
        unmatched_due_24h=counts["unmatched_due_24h"],
        exports=LabelledExport.objects.filter(organization=org).count(),
    )
