"""Platform pages: home redirect, overview, members, audit log, login, health, errors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .actors import Actor
from .errors import DomainError
from .filters import AuditEventFilterSet
from .form_flow import handle_form_post
from .forms import (
    AddMemberForm,
    ApiTokenForm,
    ApprovalPolicyForm,
    CurrencyForm,
    MemberRoleForm,
    ThrottledAuthenticationForm,
)
from .health import readiness
from .htmx import render_page
from .models import ApiToken, AuditEvent, Membership
from .overview import kpis_for as overview_kpis
from .roles import ROLE_DESCRIPTIONS, Action, Role
from .tenancy import SESSION_ORG_KEY, org_view


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the organisation they used last, or the one they joined first."""
    memberships = list(selectors.memberships_for_user(user=request.user))
    if not memberships:
        return render(request, "opshero/no_organization.html", status=200)
    last = request.session.get(SESSION_ORG_KEY)
    first_joined = min(memberships, key=lambda m: (m.created_at, m.pk))
    chosen = next((m for m in memberships if m.organization.slug == last), first_joined)
    return redirect("overview", org=chosen.organization.slug)


@org_view()
def overview(request: HttpRequest) -> HttpResponse:
    org = request.org
    members = list(selectors.members_for_org(org=org))
    context = {
        "members": members,
        "role_counts": {role.label: sum(1 for m in members if m.role == role) for role in Role},
        "can_view_audit": request.membership.can(Action.VIEW_AUDIT),
        "kpis": overview_kpis(org),
    }
    if context["can_view_audit"]:
        context["recent_events"] = list(selectors.audit_events_for_org(org=org)[:8])
    return render(request, "opshero/overview.html", context)


def _members_context(request: HttpRequest, **extra) -> dict:
    return {
        "members": selectors.members_for_org(org=request.org),
        "roles": Role.choices,
        "can_manage": request.membership.can(Action.MANAGE_MEMBERS),
        "role_descriptions": [(role.label, ROLE_DESCRIPTIONS[role]) for role in Role],
        "add_form": extra.pop("add_form", None) or AddMemberForm(),
        "policy_form": extra.pop("policy_form", None) or ApprovalPolicyForm(),
        "currency_form": extra.pop("currency_form", None) or CurrencyForm(),
        "approvers": services.approver_count(request.org),
        **extra,
    }


@require_POST
@org_view(Action.MANAGE_MEMBERS)
def org_currency(request: HttpRequest) -> HttpResponse:
    """Set the organisation's ISO 4217 currency, shown beside every money figure."""
    form = CurrencyForm(request.POST)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.set_currency(
            organization=request.org,
            currency=form.cleaned_data["currency"],
            actor=Actor.from_request(request),
        ),
        success_message=lambda org: f"Money is now shown in {org.currency}.",
        redirect_to=lambda _: resolve_url("members", org=request.org.slug),
        render_invalid=lambda status: render(
            request,
            "opshero/members.html",
            _members_context(request, currency_form=form),
            status=status,
        ),
    )


@require_POST
@org_view(Action.MANAGE_MEMBERS)
def approval_policy(request: HttpRequest) -> HttpResponse:
    """Relax or restore four-eyes signing and rollout approval (audited, with a reason)."""
    form = ApprovalPolicyForm(request.POST)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.set_single_approver(
            organization=request.org,
            enabled=form.cleaned_data["single_approver"],
            reason=form.cleaned_data["reason"],
            actor=Actor.from_request(request),
        ),
        success_message=lambda org: (
            "Single-approver mode is on: uploaders may sign their own versions; every such "
            "signature shows a badge."
            if org.single_approver
            else "Four-eyes is enforced: the uploader of a version cannot sign it."
        ),
        redirect_to=lambda _: resolve_url("members", org=request.org.slug),
        render_invalid=lambda status: render(
            request,
            "opshero/members.html",
            _members_context(request, policy_form=form),
            status=status,
        ),
    )


@org_view()
def members(request: HttpRequest) -> HttpResponse:
    return render(request, "opshero/members.html", _members_context(request))


@require_POST
@org_view(Action.MANAGE_MEMBERS)
def member_add(request: HttpRequest) -> HttpResponse:
    form = AddMemberForm(request.POST)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.add_member(
            organization=request.org,
            username=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
            actor=Actor.from_request(request),
        ),
        success_message=lambda membership: f"{form.cleaned_data['username']} was added.",
        redirect_to=lambda _: resolve_url("members", org=request.org.slug),
        render_invalid=lambda status: render(
            request, "opshero/members.html", _members_context(request, add_form=form), status=status
        ),
    )


@require_POST
@org_view(Action.MANAGE_MEMBERS)
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, organization=request.org
    )
    form = MemberRoleForm(request.POST)

    def row(status: int = 200) -> HttpResponse:
        """The member's row (HTMX) or the page, with the reason when nothing changed."""
        error = None
        if form.errors:
            error = " ".join(form.non_field_errors()) or "Choose one of the listed roles."
        membership.refresh_from_db()
        context = {"m": membership, "roles": Role.choices, "can_manage": True, "error": error}
        return render_page(
            request,
            "opshero/members.html",
            {**_members_context(request), **context},
            fragment="opshero/partials/member_row.html",
            status=status,
        )

    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.change_member_role(
            membership=membership,
            role=form.cleaned_data["role"],
            actor=Actor.from_request(request),
        ),
        success_message=lambda changed: f"{changed.user.username} is now {changed.role}.",
        redirect_to=lambda _: row(),  # answers in place: the row, not a redirect
        render_invalid=row,
        invalid_status=409,
        apply_error=lambda form, exc: form.add_error(None, exc.message),
    )


@require_POST
@org_view(Action.MANAGE_MEMBERS)
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, organization=request.org
    )
    try:
        services.remove_member(membership=membership, actor=Actor.from_request(request))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.username} was removed.")
    return redirect("members", org=request.org.slug)


@require_GET
@org_view(Action.VIEW_AUDIT)
def audit(request: HttpRequest) -> HttpResponse:
    filters = AuditEventFilterSet(request.GET)
    events = selectors.audit_events_for_org(org=request.org, filters=filters)
    page = Paginator(events, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters.values(),
        "facets": selectors.audit_facets_for_org(org=request.org),
        "actor_kinds": AuditEvent.ActorKind.choices,
        "querystring": query.urlencode(),
        "bad_dates": [name for name in ("since", "until") if name in filters.errors],
    }
    return render_page(
        request, "opshero/audit.html", context, fragment="opshero/partials/audit_table.html"
    )


def _api_tokens_page(request: HttpRequest, form: ApiTokenForm, *, new_token: str = "", status=200):
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    context = {"tokens": tokens, "form": form, "new_token": new_token}
    return render(request, "opshero/api_tokens.html", context, status=status)


@never_cache  # the page that shows a new token once must not be kept by any cache
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's personal API tokens: create one (shown once), see the others, revoke."""
    if request.method != "POST":
        return _api_tokens_page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.issue_api_token(
            user=request.user,
            name=form.cleaned_data["name"],
            actor=Actor.from_request(request),
        ),
        success_message=None,
        # Rendered, not redirected: the token exists only in this answer, never in a session.
        redirect_to=lambda issued: _api_tokens_page(
            request, ApiTokenForm(), new_token=issued[1], status=201
        ),
        render_invalid=lambda status: _api_tokens_page(request, form, status=status),
    )


@require_POST
@login_required
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)  # others' tokens: 404
    services.revoke_api_token(token=token, actor=Actor.from_request(request))
    messages.success(request, f"Token {token.prefix}… revoked; requests using it are refused.")
    return redirect("api-tokens-page")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, broker and a worker answer; 503 with the failing check otherwise."""
    ready, checks = readiness()
    return JsonResponse(
        {"status": "ok" if ready else "fail", "checks": checks}, status=200 if ready else 503
    )


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "404.html", status=404)


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def error_500(request: HttpRequest) -> HttpResponse:
    return render(request, "500.html", status=500)
