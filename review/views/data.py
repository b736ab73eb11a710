"""Review pages about the data itself: what left the sites (the ledger, its CSV), the labelled
export (list, create, download), the deletion report and the retention schedule."""

from __future__ import annotations

import io

from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from opshero.actors import Actor
from opshero.errors import NotFound
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view
from telemetry.charts import figure_json

from .. import exports, ledger, services
from ..data_forms import EvidenceSettingsForm, LabelledExportForm
from ..models import LabelledExport
from ..selectors import evidence_settings_for
from . import review_context

DELETION_RUNS_PER_PAGE = 25
EXPORTS_PER_PAGE = 25
EXPORT_POLL_SECONDS = 2


# --- what left the sites ---------------------------------------------------------------------


@require_GET
@never_cache
@org_view()
def data_sent(request: HttpRequest) -> HttpResponse:
    """Bytes and records each site sent, by UTC day and kind: a stacked chart and the totals."""
    sent = ledger.data_sent_for_org(
        org=request.org, days=request.GET.get("days"), site_id=request.GET.get("site")
    )
    context = {
        **review_context(request, "ledger"),
        "ledger": sent,
        "days_choices": ledger.DAYS_CHOICES,
        "figure": {
            "id": "chart-data-sent",
            "json": mark_safe(figure_json(ledger.ledger_figure(sent))),  # noqa: S308 - escaped
        },
        "query": _ledger_query(sent),
    }
    return render_page(
        request,
        "review/ledger.html",
        context,
        fragment="review/partials/ledger_panel.html",
    )


def _ledger_query(sent: ledger.Ledger) -> str:
    query = f"days={sent.days}"
    return query + (f"&site={sent.site.pk}" if sent.site is not None else "")


@require_GET
@never_cache
@org_view()
def data_sent_csv(request: HttpRequest) -> HttpResponse:
    """The same ledger as CSV: site, day, kind, records, bytes, requests."""
    sent = ledger.data_sent_for_org(
        org=request.org, days=request.GET.get("days"), site_id=request.GET.get("site")
    )
    response = HttpResponse(ledger.ledger_csv(sent), content_type="text/csv; charset=utf-8")
    name = f"data-sent-{request.org.slug}-{sent.start:%Y%m%d}-{sent.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- the deletion report and the retention schedule ------------------------------------------


@require_GET
@never_cache
@org_view(Action.REVIEW_EVIDENCE)
def deletions(request: HttpRequest) -> HttpResponse:
    """What retention deleted and when (newest first), and what it deletes next."""
    runs = Paginator(ledger.deletion_runs_for_org(org=request.org), DELETION_RUNS_PER_PAGE)
    context = {
        **review_context(request, "deletions"),
        "page": runs.get_page(request.GET.get("page")),
        "schedule": ledger.deletion_schedule_for_org(org=request.org),
    }
    return render_page(
        request,
        "review/deletions.html",
        context,
        fragment="review/partials/deletions_table.html",
    )


def _settings_page(request: HttpRequest, form, *, status: int = 200) -> HttpResponse:
    context = {
        **review_context(request, "settings"),
        "form": form,
        "schedule": ledger.deletion_schedule_for_org(org=request.org),
    }
    return render(request, "review/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
@never_cache
@org_view(Action.MANAGE_EVIDENCE)
def evidence_settings(request: HttpRequest) -> HttpResponse:
    """The retention schedule; a change moves the deletion time of every sample still held."""
    if request.method == "POST":
        form = EvidenceSettingsForm(request.POST)
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.set_evidence_settings(
                organization=request.org,
                actor=Actor.from_request(request),
                retention_days=form.cleaned_data["retention_days"],
                clinic_retention_days=form.cleaned_data["clinic_retention_days"],
            ),
            success_message=lambda current: (
                f"Evidence is now kept {current.retention_days} days "
                f"({current.clinic_retention_days} at clinics)."
            ),
            redirect_to=lambda _: reverse("review:settings", kwargs={"org": request.org.slug}),
            render_invalid=lambda status: _settings_page(request, form, status=status),
        )
    current = evidence_settings_for(org=request.org)
    form = EvidenceSettingsForm(
        initial={
            "retention_days": current.retention_days,
            "clinic_retention_days": current.clinic_retention_days,
        }
    )
    return _settings_page(request, form)


# --- the labelled export ---------------------------------------------------------------------


def _exports_page(request: HttpRequest, form, *, status: int = 200) -> HttpResponse:
    page = Paginator(exports.exports_for_org(org=request.org), EXPORTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        **review_context(request, "exports"),
        "form": form,
        "page": page,
        "building": any(export.status == LabelledExport.Status.BUILDING for export in page),
        "poll_seconds": EXPORT_POLL_SECONDS,
        "exportable": exports.exportable_samples(org=request.org).count(),
    }
    return render_page(
        request,
        "review/exports.html",
        context,
        fragment="review/partials/exports_table.html",
        status=status,
    )


@require_http_methods(["GET", "POST"])
@never_cache
@org_view(Action.EXPORT_EVIDENCE)
def labelled_exports(request: HttpRequest) -> HttpResponse:
    """The organisation's labelled exports (polled while one builds) and the form for a new one."""
    sites, versions = exports.export_choices(org=request.org)
    form = LabelledExportForm(request.POST or None, sites=sites, versions=versions)
    if request.method == "POST":
        return handle_form_post(
            request,
            form=form,
            perform=lambda: exports.create_labelled_export(
                organization=request.org,
                actor=Actor.from_request(request),
                site_ids=[site.pk for site in form.cleaned_data["sites"]],
                model_version_id=(
                    form.cleaned_data["model_version"].pk
                    if form.cleaned_data["model_version"] is not None
                    else None
                ),
                include_device_ids=form.cleaned_data["include_device_ids"],
                include_free_text=form.cleaned_data["include_free_text"],
            ),
            success_message="The export is being built; it appears below when it is ready.",
            redirect_to=lambda _: reverse("review:exports", kwargs={"org": request.org.slug}),
            render_invalid=lambda status: _exports_page(request, form, status=status),
        )
    return _exports_page(request, form)


@require_GET
@never_cache
@org_view(Action.EXPORT_EVIDENCE)
def export_download(request: HttpRequest, export_id) -> FileResponse:
    """The export's zip, streamed; every download is audited."""
    export = exports.export_for_org(org=request.org, pk=export_id)
    if export is None:
        raise Http404("No such export.")
    try:
        data = exports.open_export(export)  # decrypted in memory (exports are at rest sealed)
        exports.record_export_download(export=export, actor=Actor.from_request(request))
    except NotFound as exc:
        raise Http404(exc.message) from None
    file_name = f"labelled-export-{export.created_at:%Y%m%d-%H%M}-{str(export.pk)[:8]}.zip"
    response = FileResponse(
        io.BytesIO(data),
        as_attachment=True,
        filename=file_name,
        content_type="application/zip",
    )
    response["X-Content-SHA256"] = export.sha256
    return response


urlpatterns = [
    path("review/data-sent/", data_sent, name="ledger"),
    path("review/data-sent.csv", data_sent_csv, name="ledger-export"),
    path("review/deletions/", deletions, name="deletions"),
    path("review/settings/", evidence_settings, name="settings"),
    path("review/exports/", labelled_exports, name="exports"),
    path(
        "review/exports/<uuid:export_id>/download",
        export_download,
        name="export-download",
    ),
]
