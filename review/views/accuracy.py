"""Review pages: field accuracy per site x model version, for every member (figures, not
evidence: nothing here shows or decrypts a sample)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from fleet.selectors import site_choices
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import charts
from ..accuracy import ECE_BINS, MIN_REVIEWS, TOO_FEW
from ..field_accuracy import DEFAULT_DAYS, FieldAccuracy, field_accuracy_for_org
from . import review_context

DAYS_CHOICES = (7, 30, 90)


def _json(figure: dict) -> str:
    # figure_json escapes <, > and & (as json_script does): safe inside <script type=json>.
    return mark_safe(charts.figure_json(figure))  # noqa: S308


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = (request.GET.get(name) or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def _figures(result: FieldAccuracy) -> list[dict]:
    selected = result.selected
    if selected is None:
        return []
    series = result.series
    starts = [point.start.date().isoformat() for point in series]
    over_time = charts.accuracy_over_time(
        starts=starts,
        reviewed=[p.reviewed.value for p in series],
        reviewed_low=[p.reviewed.low for p in series],
        reviewed_high=[p.reviewed.high for p in series],
        thumbs=[p.thumbs.value for p in series],
        estimated=[p.estimated for p in series],
        lab=selected.lab.accuracy if selected.lab else None,
    )
    return [
        {
            "id": "accuracy-confusion",
            "json": _json(charts.confusion_figure(selected.summary.confusion)),
        },
        {
            "id": "accuracy-reliability",
            "json": _json(charts.reliability_figure(selected.summary.calibration)),
        },
        {"id": "accuracy-over-time", "json": _json(over_time)},
    ]


@require_GET
@org_view(Action.VIEW)
def accuracy(request: HttpRequest) -> HttpResponse:
    """Measured accuracy (reviews, by stratum), thumbs, estimated and lab figures side by side."""
    days = _int_param(request, "days") or DEFAULT_DAYS
    if days not in DAYS_CHOICES:
        days = DEFAULT_DAYS
    site_id = _int_param(request, "site")
    version_id = _int_param(request, "version")
    result = field_accuracy_for_org(
        org=request.org, days=days, site_id=site_id, version_id=version_id
    )
    context = {
        **review_context(request, "accuracy"),
        "result": result,
        "selected": result.selected,
        "figures": _figures(result),
        "days": days,
        "days_choices": DAYS_CHOICES,
        "site_id": site_id,
        "version_id": version_id,
        "sites": site_choices(org=request.org),
        # Each version once, in table order (a version runs at several sites).
        "versions": list(
            {
                row.version_id: f"{row.model_name} {row.model_version}"
                for row in result.rows
                if row.version_id is not None
            }.items()
        ),
        "min_reviews": MIN_REVIEWS,
        "too_few": TOO_FEW,
        "ece_bins": ECE_BINS,
    }
    return render_page(
        request,
        "review/accuracy.html",
        context,
        fragment="review/partials/accuracy_panel.html",
    )


urlpatterns = [path("review/accuracy/", accuracy, name="accuracy")]
