"""The review queue: one lane (site x model version) at a time, oldest waiting sample first,
reviewed from the keyboard (``review/static/review/queue.js``).

The page and the item fragment show one sample; the fragment names the next sample's URL, which
the script preloads while the reviewer looks at the current one. A submit answers with the next
item's fragment and refreshes the counts with ``hx-swap-oob``; without JavaScript the buttons
are a plain form POST and a redirect to the next item. The evidence bytes are served by
``content`` only, decrypted and audited by ``services.read_evidence``.
"""

from __future__ import annotations

from string import ascii_lowercase
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from fleet.models import Site
from fleet.selectors import effective_policy
from opshero.actors import Actor
from opshero.errors import NotFound
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page, wants_fragment
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import selectors, services
from ..forms import ReviewForm
from ..models import EvidenceSample, Review
from . import review_context

# One key per class: digits, then letters, leaving out the letters the queue itself uses
# (r: reason, s: skip).
CLASS_KEYS = tuple("123456789") + tuple(c for c in ascii_lowercase if c not in "rs")
_OWN_KEYS = frozenset("rs?")


def class_keys(names: list[str]) -> list[str]:
    """One key per class. Classes that are themselves one distinct key each (the digits "0" to
    "9", single letters other than the queue's own) are typed as they are named, so a reviewer
    presses 3 for the class "3"; otherwise digits then letters, in the contract's order."""
    own = [name.lower() for name in names]
    if (
        names
        and all(len(name) == 1 and name.isalnum() and name.isascii() for name in own)
        and len(set(own)) == len(own)
        and not _OWN_KEYS & set(own)
    ):
        return own
    return [CLASS_KEYS[i] if i < len(CLASS_KEYS) else "" for i in range(len(names))]


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "application/json": "json"}
# The evidence is shown by our own page only: nothing in it may run, be framed or be sniffed.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src 'self'; sandbox; frame-ancestors 'self'"


def _reason_filter(request: HttpRequest) -> str | None:
    value = request.GET.get("reason") or ""
    return value if value in EvidenceSample.Reason.values else None


def _sample_or_404(request: HttpRequest, sample_id) -> EvidenceSample:
    sample = selectors.sample_for_org(org=request.org, pk=sample_id)
    if sample is None:
        raise Http404("No such evidence.")
    return sample


def _query(reason: str | None, **extra) -> str:
    values = {k: v for k, v in {**extra, "reason": reason}.items() if v not in (None, "")}
    return f"?{urlencode(values)}" if values else ""


def _item_url(request: HttpRequest, sample: EvidenceSample | None, reason: str | None) -> str:
    if sample is None:
        return ""
    url = reverse("review:item", kwargs={"org": request.org.slug, "sample_id": sample.pk})
    return url + _query(reason)


def _queue_url(request: HttpRequest, reason: str | None, lane=None, **ids) -> str:
    if lane is not None:
        ids = {"site": lane.site_id, "version": lane.version_param}
    return reverse("review:queue", kwargs={"org": request.org.slug}) + _query(reason, **ids)


def _version_param(sample: EvidenceSample) -> str:
    return str(sample.model_version_id) if sample.model_version_id is not None else "none"


def _find_lane(lanes, site_id, version: str | None):
    for lane in lanes:
        if str(lane.site_id) == str(site_id) and lane.version_param == (version or ""):
            return lane
    return None


def _counts_context(request: HttpRequest, lanes, lane, reason: str | None) -> dict:
    return {
        "lanes": [
            {
                "lane": each,
                "url": _queue_url(request, reason, each),
                "current": lane is not None
                and (each.site_id, each.version_param) == (lane.site_id, lane.version_param),
            }
            for each in lanes
        ],
        "lane": lane,
        "remaining": lane.waiting if lane is not None else 0,
        "total_waiting": sum(each.waiting for each in lanes),
        "reason_filter": reason or "",
        "reason_choices": EvidenceSample.Reason.choices,
    }


def _item_context(
    request: HttpRequest,
    sample: EvidenceSample,
    following: EvidenceSample | None,
    reason: str | None,
    form: ReviewForm | None = None,
    error: str = "",
) -> dict:
    names = selectors.class_names_for(sample)
    keys = class_keys(names)
    chosen = form.data.get("true_class", "") if form is not None and form.is_bound else ""
    review = None
    if sample.status == EvidenceSample.Status.REVIEWED:
        review = Review.objects.filter(sample=sample).select_related("reviewer").first()
    return {
        "sample": sample,
        "site": sample.site,
        "when": sample.event_timestamp or sample.received_at,
        # The device's own policy (a lane may set its threshold), as it stands now.
        "policy": effective_policy(device=sample.device),
        "assistive": sample.site_kind == Site.Kind.CLINIC or sample.site.kind == Site.Kind.CLINIC,
        "class_buttons": [
            {
                "key": key,
                "name": name,
                "predicted": name == sample.predicted_class,
                "chosen": name == chosen,
            }
            for key, name in zip(keys, names, strict=True)
        ],
        "form": form or ReviewForm(),
        "chosen": chosen,
        "error": error,
        "review": review,
        "reviewable": sample.status == EvidenceSample.Status.LINKED,
        "has_object": sample.has_object and sample.wrapped_key is not None,
        "content_url": reverse(
            "review:content", kwargs={"org": request.org.slug, "sample_id": sample.pk}
        ),
        "submit_url": reverse(
            "review:submit", kwargs={"org": request.org.slug, "sample_id": sample.pk}
        )
        + _query(reason),
        "next_url": _item_url(request, following, reason),
        "queue_url": _queue_url(
            request, reason, site=sample.site_id, version=_version_param(sample)
        ),
        "class_keys_shown": [key for key in keys if key],
    }


def _page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    return render_page(
        request,
        "review/queue.html",
        {**review_context(request, "queue"), **context},
        fragment="review/partials/queue_item.html",
        status=status,
    )


# --- the queue page -----------------------------------------------------------------------------


@require_GET
@never_cache
@org_view(Action.REVIEW_EVIDENCE)
def queue(request: HttpRequest) -> HttpResponse:
    """The lanes with their waiting counts, and the chosen lane's oldest waiting sample."""
    reason = _reason_filter(request)
    lanes = selectors.queue_lanes(org=request.org, reason=reason)
    lane = _find_lane(lanes, request.GET.get("site"), request.GET.get("version")) or (
        lanes[0] if lanes else None
    )
    context = _counts_context(request, lanes, lane, reason)
    if lane is not None:
        current, following = selectors.first_in_lane(
            org=request.org,
            site_id=lane.site_id,
            model_version_id=lane.model_version_id,
            reason=reason,
        )
        if current is not None:
            context.update(_item_context(request, current, following, reason))
    return render(request, "review/queue.html", {**review_context(request, "queue"), **context})


# --- one item -----------------------------------------------------------------------------------


def _item_response(
    request: HttpRequest,
    sample: EvidenceSample,
    reason: str | None,
    *,
    form: ReviewForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    following = selectors.next_in_lane(sample=sample, reason=reason)
    context = _item_context(request, sample, following, reason, form=form, error=error)
    if not wants_fragment(request):
        lanes = selectors.queue_lanes(org=request.org, reason=reason)
        lane = _find_lane(lanes, sample.site_id, _version_param(sample))
        context.update(_counts_context(request, lanes, lane, reason))
    return _page(request, context, status=status)


@require_GET
@never_cache
@org_view(Action.REVIEW_EVIDENCE)
def item(request: HttpRequest, sample_id) -> HttpResponse:
    """One sample: the fragment the script preloads and swaps in, or the queue page on it."""
    sample = _sample_or_404(request, sample_id)
    return _item_response(request, sample, _reason_filter(request))


@require_POST
@org_view(Action.REVIEW_EVIDENCE)
def submit(request: HttpRequest, sample_id) -> HttpResponse:
    """Confirm or correct one sample; answer with the next one (fragment, or a redirect)."""
    sample = _sample_or_404(request, sample_id)
    reason = _reason_filter(request)
    form = ReviewForm(request.POST)

    def perform() -> Review:
        return services.submit_review(
            sample=sample,
            actor=Actor.from_request(request),
            true_class=form.cleaned_data["true_class"],
            reason=form.cleaned_data["reason"],
        )

    def answer(review: Review) -> HttpResponse:
        following = selectors.next_in_lane(sample=sample, reason=reason)
        if wants_fragment(request):
            return _next_fragment(request, sample, following, reason)
        verb = "Confirmed" if review.verdict == Review.Verdict.CONFIRMED else "Corrected"
        messages.success(
            request, f"{verb}: {review.predicted_class} → {review.true_class}. Next case."
        )
        if following is not None:
            return redirect(_item_url(request, following, reason))
        return redirect(
            _queue_url(request, reason, site=sample.site_id, version=_version_param(sample))
        )

    def refused(status: int) -> HttpResponse:
        fresh = selectors.sample_for_org(org=request.org, pk=sample.pk) or sample
        message = next(iter(form.non_field_errors()), "") or (
            "The review was not saved: see the fields below." if form.errors else ""
        )
        return _item_response(request, fresh, reason, form=form, error=message, status=status)

    return handle_form_post(
        request,
        form=form,
        perform=perform,
        success_message=None,
        redirect_to=answer,
        render_invalid=refused,
        status_from_error=True,
    )


def _next_fragment(
    request: HttpRequest,
    reviewed: EvidenceSample,
    following: EvidenceSample | None,
    reason: str | None,
) -> HttpResponse:
    """The next item (or the end of the lane) and the refreshed counts, out of band."""
    lanes = selectors.queue_lanes(org=request.org, reason=reason)
    lane = _find_lane(lanes, reviewed.site_id, _version_param(reviewed))
    context = {
        **review_context(request, "queue"),
        **_counts_context(request, lanes, lane, reason),
        "oob": True,
        "queue_url": _queue_url(
            request, reason, site=reviewed.site_id, version=_version_param(reviewed)
        ),
    }
    if following is not None:
        after = selectors.next_in_lane(sample=following, reason=reason)
        context.update(_item_context(request, following, after, reason))
        template = "review/partials/queue_item.html"
    else:
        template = "review/partials/queue_done.html"
    body = render_to_string(template, context, request=request)
    body += render_to_string("review/partials/queue_counts.html", context, request=request)
    response = HttpResponse(body)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- the evidence bytes -------------------------------------------------------------------------


def _plain(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    return _harden(response)


def _harden(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-store, private"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
@org_view(Action.REVIEW_EVIDENCE)
def content(request: HttpRequest, sample_id) -> HttpResponse:
    """The sample's bytes, decrypted and audited (``?download=1``: as an attachment, audited as
    a download). Served as the type it was checked to be, never as HTML."""
    sample = _sample_or_404(request, sample_id)
    download = request.GET.get("download") == "1"
    try:
        body = services.read_evidence(
            sample=sample, actor=Actor.from_request(request), download=download
        )
    except NotFound as exc:
        return _plain(404, exc.message)
    except services.EvidenceTamperedError as exc:
        return _plain(409, exc.message)
    media = sample.media_type if sample.media_type in EXTENSIONS else "application/octet-stream"
    response = HttpResponse(body, content_type=media)
    name = f"evidence-{sample.pk}.{EXTENSIONS.get(sample.media_type, 'bin')}"
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return _harden(response)


urlpatterns = [
    path("review/", queue, name="queue"),
    path("review/<uuid:sample_id>/", item, name="item"),
    path("review/<uuid:sample_id>/review", submit, name="submit"),
    path("review/<uuid:sample_id>/content", content, name="content"),
]
