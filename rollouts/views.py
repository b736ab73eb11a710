"""Rollout pages: the list with the approval queue, the planning wizard and its preview, the
approval queue with what changed, the rollout page with its live fragment and controls."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from modelregistry import assignment_services, reports
from modelregistry.models import ModelSignature, ModelVersion, ValidationRun
from modelregistry.views import version_comparison
from opshero.actors import Actor
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view

from . import selectors, services
from .analysis import Thresholds
from .forms import ActionFilterForm, ReasonForm, RejectForm, RolloutPlanForm, apply_plan_error
from .models import DeploymentAction, Rollout, Wave
from .planning import AnalysisSettings

R = Rollout.Status
POLL_SECONDS = 2
DEVICES_PER_PAGE = 50


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _role(request) -> str:
    return request.membership.role


def _perms(request) -> dict:
    return {
        "can_manage": request.membership.can(Action.MANAGE_ROLLOUTS),
        "can_approve": request.membership.can(Action.APPROVE_ROLLOUTS),
    }


def _rollout_or_404(request, rollout_id: int) -> Rollout:
    rollout = selectors.rollout_for_org(org=request.org, pk=rollout_id)
    if rollout is None:
        raise Http404("No such rollout.")
    return rollout


def _rollout_url(request, rollout: Rollout) -> str:
    return resolve_url("rollouts:detail", org=request.org.slug, rollout_id=rollout.pk)


# --- list ---------------------------------------------------------------------------------------


@require_GET
@org_view()
def rollout_list(request: HttpRequest) -> HttpResponse:
    rollouts = list(selectors.rollouts_for_org(org=request.org, status=request.GET.get("status")))
    progress = _wave_summaries([r.pk for r in rollouts])
    for rollout in rollouts:
        rollout.waves_done, rollout.waves_total = progress.get(rollout.pk, (0, 0))
    perms = _perms(request)
    context = {
        **perms,
        "rollouts": rollouts,
        "queue": [r for r in rollouts if r.status == R.PENDING_APPROVAL]
        if perms["can_approve"] and not request.GET.get("status")
        else [],
        "statuses": R.choices,
        "status": request.GET.get("status") or "",
    }
    return render(request, "rollouts/rollout_list.html", context)


def _wave_summaries(rollout_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(waves done, waves) per rollout, in one query."""
    found: dict[int, list[int]] = {}
    for rollout_id, status, n in (
        Wave.objects.filter(rollout_id__in=rollout_ids)
        .values_list("rollout_id", "status")
        .annotate(n=Count("pk"))
        .values_list("rollout_id", "status", "n")
    ):
        entry = found.setdefault(rollout_id, [0, 0])
        entry[1] += n
        if status == Wave.Status.DONE:
            entry[0] += n
    return {key: (done, total) for key, (done, total) in found.items()}


# --- wizard -------------------------------------------------------------------------------------


def _wizard_page(request, form: RolloutPlanForm, status: int = 200) -> HttpResponse:
    context = {"form": form, "defaults": Thresholds(), "plan_defaults": AnalysisSettings()}
    return render(request, "rollouts/rollout_new.html", context, status=status)


@org_view(Action.MANAGE_ROLLOUTS)
def rollout_new(request: HttpRequest) -> HttpResponse:
    """The wizard; "Create draft" saves through ``services.create_rollout``."""
    form = RolloutPlanForm(request.POST or None, org=request.org)
    if request.method != "POST":
        return _wizard_page(request, form)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.create_rollout(
            organization=request.org,
            actor=_actor(request),
            role=_role(request),
            name=form.cleaned_data["name"],
            analysis=form.analysis,
            seed=form.cleaned_data.get("seed"),
            **form.service_arguments(),
        ),
        success_message=lambda rollout: (
            f"Draft {rollout.name} planned; submit it for approval when it looks right."
        ),
        redirect_to=lambda rollout: _rollout_url(request, rollout),
        render_invalid=lambda status: _wizard_page(request, form, status),
        apply_error=apply_plan_error,
    )


@require_POST
@org_view(Action.MANAGE_ROLLOUTS)
def rollout_preview(request: HttpRequest) -> HttpResponse:
    """The wizard's preview (an HTMX fragment): devices and sites per wave, every excluded
    device with its reason, and conflicts with other rollouts. Nothing is stored."""
    form = RolloutPlanForm(request.POST, org=request.org)
    preview = None
    seed = None
    if form.is_valid():
        seed = form.cleaned_data.get("seed")
        if seed is None:
            seed = secrets.randbelow(2**31)
        try:
            preview = services.preview_rollout(
                organization=request.org, seed=seed, **form.service_arguments()
            )
        except DomainError as exc:
            apply_plan_error(form, exc)
    context = {
        "form": form,
        "preview": preview,
        "seed": seed,
        "seed_given": form.is_bound and bool(form.data.get("seed")),
        "waves": [
            {"spec": spec, "devices": len(ids), "sites": preview.wave_sites(ids)}
            for spec, ids in preview.waves
        ]
        if preview
        else [],
    }
    return render(request, "rollouts/partials/preview.html", context)


# --- the rollout page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    verb: str
    label: str
    icon: str
    css: str
    confirm: str
    action: Action
    reason: str = ""  # "required" | "optional" | ""


CONTROLS: dict[str, Control] = {
    c.verb: c
    for c in (
        Control(
            "submit",
            "Submit for approval",
            "send",
            "btn-primary",
            "Submit this rollout for approval? An approver other than you decides.",
            Action.MANAGE_ROLLOUTS,
        ),
        Control(
            "withdraw",
            "Withdraw",
            "arrow-back-up",
            "btn-outline-secondary",
            "Withdraw the request for approval (back to draft)?",
            Action.MANAGE_ROLLOUTS,
        ),
        Control(
            "approve",
            "Approve",
            "circle-check",
            "btn-success",
            "Approve this rollout? The approval is pinned to the artifact, the signed manifest "
            "and the validation evidence shown.",
            Action.APPROVE_ROLLOUTS,
        ),
        Control(
            "reject",
            "Reject",
            "circle-x",
            "btn-outline-danger",
            "Reject this rollout with the reason given?",
            Action.APPROVE_ROLLOUTS,
            "required",
        ),
        Control(
            "reopen",
            "Reopen as draft",
            "pencil",
            "btn-outline-primary",
            "Reopen this rejected rollout as a draft?",
            Action.MANAGE_ROLLOUTS,
        ),
        Control(
            "pause",
            "Pause",
            "player-pause",
            "btn-outline-warning",
            "Pause the rollout? No new device is notified until it is resumed.",
            Action.MANAGE_ROLLOUTS,
            "optional",
        ),
        Control(
            "resume",
            "Resume",
            "player-play",
            "btn-primary",
            "Resume the rollout?",
            Action.MANAGE_ROLLOUTS,
        ),
        Control(
            "advance",
            "Advance now",
            "player-skip-forward",
            "btn-outline-primary",
            "Finish the current wave now and start the next one, without waiting for its "
            "soak and analysis?",
            Action.MANAGE_ROLLOUTS,
        ),
        Control(
            "abort",
            "Abort",
            "hand-stop",
            "btn-outline-danger",
            "Abort the rollout? Devices keep what they run now; nothing more is sent.",
            Action.MANAGE_ROLLOUTS,
            "optional",
        ),
        Control(
            "roll-back",
            "Roll back all",
            "arrow-back",
            "btn-danger",
            "Roll every device of this rollout back to the version it ran before?",
            Action.MANAGE_ROLLOUTS,
            "optional",
        ),
    )
}

CONTROLS_BY_STATE: dict[str, tuple[str, ...]] = {
    R.DRAFT: ("submit", "abort"),
    R.PENDING_APPROVAL: ("approve", "reject", "withdraw", "abort"),
    R.REJECTED: ("reopen",),
    R.APPROVED: ("abort",),
    R.RUNNING: ("pause", "advance", "abort", "roll-back"),
    R.PAUSED: ("resume", "advance", "abort", "roll-back"),
    R.COMPLETED: ("roll-back",),
}


# The digests an approval is pinned to; the approve forms post what the page showed.
PIN_NAMES = ("artifact_sha256", "manifest_digest", "evidence_digest")


def _current_pins(rollout: Rollout) -> dict | None:
    """What approving would pin now (None when it cannot be approved: no live signature)."""
    if rollout.status != R.PENDING_APPROVAL:
        return None
    try:
        return services.approval_pins(rollout.version)
    except DomainError:
        return None


def _perform(verb: str, rollout: Rollout, request, form) -> Callable[[], object]:
    actor, role = _actor(request), _role(request)
    reason = (form.cleaned_data.get("reason") or "").strip()
    calls: dict[str, Callable[[], object]] = {
        "submit": lambda: services.submit_rollout(rollout=rollout, actor=actor, role=role),
        "withdraw": lambda: services.withdraw_rollout(rollout=rollout, actor=actor, role=role),
        "approve": lambda: services.approve_rollout(
            rollout=rollout,
            actor=actor,
            role=role,
            seen={name: request.POST.get(name, "") for name in PIN_NAMES},
        ),
        "reject": lambda: services.reject_rollout(
            rollout=rollout, actor=actor, role=role, reason=reason
        ),
        "reopen": lambda: services.reopen_rollout(rollout=rollout, actor=actor, role=role),
        "pause": lambda: services.pause_rollout(
            rollout=rollout, actor=actor, role=role, reason=reason
        ),
        "resume": lambda: services.resume_rollout(rollout=rollout, actor=actor, role=role),
        "advance": lambda: services.advance_now(rollout=rollout, actor=actor, role=role),
        "abort": lambda: services.abort_rollout(
            rollout=rollout, actor=actor, role=role, reason=reason
        ),
        "roll-back": lambda: services.roll_back(
            rollout=rollout, actor=actor, role=role, wave=_wave(rollout, form), reason=reason
        ),
    }
    return calls[verb]


def _wave(rollout: Rollout, form) -> Wave | None:
    number = form.cleaned_data.get("wave")
    if number is None:
        return None
    wave = rollout.waves.filter(number=number).first()
    if wave is None:
        raise Http404("No such wave.")
    return wave


DONE_MESSAGES = {
    "submit": "Submitted for approval.",
    "withdraw": "Withdrawn; the rollout is a draft again.",
    "approve": "Approved; the rollout starts with its first wave.",
    "reject": "Rejected; the planner sees your reason.",
    "reopen": "Reopened as a draft.",
    "pause": "Paused.",
    "resume": "Resumed.",
    "advance": "Advanced to the next wave.",
    "abort": "Aborted.",
    "roll-back": "Rolling back; devices get the previous version in a re-issued manifest.",
}


@require_POST
@org_view()
def rollout_control(request: HttpRequest, rollout_id: int, verb: str) -> HttpResponse:
    """One control of the rollout page (or of the approval queue): the role is checked here
    (403), the service decides the rest; its refusals become messages."""
    control = CONTROLS.get(verb)
    if control is None:
        raise Http404("No such control.")
    rollout = _rollout_or_404(request, rollout_id)
    if not request.membership.can(control.action):
        raise PermissionDenied(
            f"Your role ({request.membership.get_role_display()}) cannot do this."
        )
    form = (RejectForm if verb == "reject" else ReasonForm)(request.POST)
    back = _back_url(request, rollout)

    def refused(status: int) -> HttpResponse:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)

    return handle_form_post(
        request,
        form=form,
        perform=lambda: _perform(verb, rollout, request, form)(),
        success_message=DONE_MESSAGES[verb],
        redirect_to=lambda _: back,
        render_invalid=refused,
    )


def _back_url(request, rollout: Rollout) -> str:
    queue = resolve_url("rollouts:approvals", org=request.org.slug)
    if request.POST.get("next") == "approvals":
        return queue
    return _rollout_url(request, rollout)


def _four_eyes_blocked(request, rollout: Rollout) -> bool:
    """The creator may not approve (unless the organisation relaxed four-eyes)."""
    return rollout.created_by_id == request.user.pk and not request.org.single_approver


def _controls(request, rollout: Rollout) -> list[Control]:
    shown = []
    for verb in CONTROLS_BY_STATE.get(rollout.status, ()):
        control = CONTROLS[verb]
        if not request.membership.can(control.action):
            continue
        if verb in ("approve", "reject") and _four_eyes_blocked(request, rollout):
            continue
        shown.append(control)
    return shown


def _live_context(rollout: Rollout) -> dict:
    verdicts = selectors.verdicts_for(rollout)
    rounds: dict[tuple[int, int], dict] = {}
    for verdict in verdicts:
        verdict.key_figures = _key_figures(verdict.figures)
        key = (verdict.wave.number, verdict.round)
        entry = rounds.setdefault(
            key, {"wave": verdict.wave, "round": verdict.round, "verdicts": []}
        )
        entry["verdicts"].append(verdict)
    measures = selectors.rollout_measures(rollout)
    return {
        "progress": selectors.wave_progress(rollout),
        "counts": selectors.state_counts(rollout),
        "action_labels": dict(DeploymentAction.Status.choices),
        "verdict_rounds": list(rounds.values()),
        "measures": measures,
        "timeline": selectors.timeline(rollout),
        "polling": rollout.status in (R.APPROVED, R.RUNNING, R.PAUSED)
        or bool(measures.rollback_waiting),
        "poll_seconds": POLL_SECONDS,
    }


def _readable_figure(value) -> str | None:
    if isinstance(value, bool) or value is None:
        return None if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value if len(value) <= 40 else None
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (_readable_figure(v) for v in value)
        return f"[{low}, {high}]" if low is not None and high is not None else None
    return None


def _key_figures(figures: dict, limit: int = 12) -> list[tuple[str, str]]:
    """The verdict's numbers a reader can take in: scalars and intervals, one level deep
    (``ci_low``/``ci_high`` pairs are shown as they are stored)."""
    shown: list[tuple[str, str]] = []
    for key, value in (figures or {}).items():
        if isinstance(value, dict):
            for inner, item in value.items():
                text = _readable_figure(item)
                if text is not None:
                    shown.append((f"{key}.{inner}".replace("_", " "), text))
        else:
            text = _readable_figure(value)
            if text is not None:
                shown.append((key.replace("_", " "), text))
    return shown[:limit]


@require_GET
@never_cache
@org_view()
def rollout_detail(request: HttpRequest, rollout_id: int) -> HttpResponse:
    """The rollout page; the 2-second poll of an active rollout gets only the live panel."""
    rollout = _rollout_or_404(request, rollout_id)
    filter_form = ActionFilterForm(request.GET or None)
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else None
    page = Paginator(
        selectors.actions_for_rollout(rollout=rollout, status=status or None), DEVICES_PER_PAGE
    ).get_page(request.GET.get("page"))
    approvals = list(rollout.approvals.select_related("decided_by"))
    perms = _perms(request)
    context = {
        **perms,
        "rollout": rollout,
        "standing": selectors.standing_approval(rollout),
        "approvals": approvals,
        "voided": [a for a in approvals if a.voided_at],
        "controls": _controls(request, rollout),
        "pins": _current_pins(rollout),
        "four_eyes_blocked": perms["can_approve"]
        and rollout.status == R.PENDING_APPROVAL
        and _four_eyes_blocked(request, rollout),
        "waves": list(rollout.waves.order_by("number")),
        "analysis": AnalysisSettings.from_dict(rollout.analysis_settings),
        "filter_form": filter_form,
        "page": page,
        **_live_context(rollout),
    }
    return render_page(
        request,
        "rollouts/rollout_detail.html",
        context,
        fragment="rollouts/partials/live.html",
    )


# --- approval queue ------------------------------------------------------------------------------


@require_GET
@org_view()
def approvals(request: HttpRequest) -> HttpResponse:
    """Each rollout pending approval, with what changed since the version the targeted
    devices run now (the version most of them had before this rollout)."""
    queue = list(selectors.approval_queue(org=request.org))
    running_now = _fleet_versions([r.pk for r in queue])
    versions = {
        v.pk: v
        for v in ModelVersion.objects.filter(
            pk__in={r.version_id for r in queue} | set(running_now.values())
        ).select_related("model", "derived_from")
    }
    runs = _newest_runs(list(versions))
    signatures = _live_signatures(list(versions))
    for version in versions.values():
        passed = runs.get(version.pk, [])
        version.headline = reports.headline(passed[0] if passed else None)
        version.passed_runs = passed
        version.live_signature = signatures.get(version.pk)
    pins = assignment_services.approval_pins_many(versions[r.version_id] for r in queue)
    entries = []
    for rollout in queue:
        candidate = versions[rollout.version_id]
        current = versions.get(running_now.get(rollout.pk))
        compared = [current, candidate] if current else [candidate]
        rows, figure_rows = version_comparison(compared)
        entries.append(
            {
                "rollout": rollout,
                "current": current,
                "candidate": candidate,
                "compared": compared,
                "rows": rows,
                "figure_rows": figure_rows,
                "gates": _gate_rows(candidate),
                "four_eyes_blocked": _four_eyes_blocked(request, rollout),
                "pins": pins.get(candidate.pk),
            }
        )
    context = {**_perms(request), "entries": entries, "reject_form": RejectForm()}
    return render(request, "rollouts/approvals.html", context)


def _fleet_versions(rollout_ids: list[int]) -> dict[int, int]:
    """The version most of each rollout's devices ran before it (one query)."""
    tallies: dict[int, Counter] = {}
    for rollout_id, version_id, n in (
        DeploymentAction.objects.filter(rollout_id__in=rollout_ids, previous_version__isnull=False)
        .values_list("rollout_id", "previous_version_id")
        .annotate(n=Count("pk"))
        .values_list("rollout_id", "previous_version_id", "n")
    ):
        tallies.setdefault(rollout_id, Counter())[version_id] += n
    return {key: tally.most_common(1)[0][0] for key, tally in tallies.items()}


def _newest_runs(version_ids: list[int]) -> dict[int, list[ValidationRun]]:
    """Passed runs per version, newest first (one query)."""
    found: dict[int, list[ValidationRun]] = {}
    for run in (
        ValidationRun.objects.filter(version_id__in=version_ids, status=ValidationRun.Status.PASSED)
        .select_related("target")
        .order_by("-finished_at", "-pk")
    ):
        found.setdefault(run.version_id, []).append(run)
    return found


def _live_signatures(version_ids: list[int]) -> dict[int, ModelSignature]:
    """The signature devices get per version (the one ``live_signature`` picks; one query)."""
    return assignment_services.live_signatures(version_ids)


def _gate_rows(version: ModelVersion) -> list[dict]:
    """The validation gates of the newest passed run's report: name, measured, limit."""
    runs = getattr(version, "passed_runs", [])
    if not runs:
        return []
    for step in (runs[0].report or {}).get("steps", []):
        if step.get("name") == "gates":
            return list((step.get("data") or {}).get("gates") or [])
    return []
