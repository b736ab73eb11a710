"""The decision wizard: six question steps and a result, as HTMX steps.

Answers live in the session (per organisation) until the result is saved as an assessment, so
back/forward, a reload of any step, or a step left with an error never lose what was typed:
valid answers are stored as answers, text that does not validate yet is kept as that step's
draft and shown again, with its errors, when the step is opened. Every navigation button is a
submit of the current step, so leaving a step always keeps what is on it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import push_url

from fleet import selectors as fleet_selectors
from fleet.models import Device, ExecutionProvider
from fleet.models import Placement as FleetPlacement
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page, wants_fragment
from opshero.tenancy import org_view

from .. import services
from ..forms import (
    REQUIRED_STEP_KEYS,
    STEP_BY_KEY,
    WIZARD_STEPS,
    WORKFLOW_HINTS,
    ResultStep,
    WizardStep,
)
from ..models import Workflow
from ..rules import FACT_LABELS, PlanningInputError, WizardAnswers, decide
from ..vocabulary import (
    COMPLEXITY_LABELS,
    HARDWARE_LABELS,
    PRIVACY_LABELS,
    ExistingHardware,
)
from .common import actor, assessment_or_404, can_edit, invalid_status, require_edit

SESSION_PREFIX = "roi.wizard."

# Which registered sites a workflow's plan is about (by fleet site kind); other workflows, or an
# organisation without sites of that kind, count every site.
WORKFLOW_SITE_KINDS = {
    Workflow.LOGISTICS_DOCK_VISION: ("dock", "hub"),
    Workflow.FIELD_SERVICE_TRIAGE: ("field",),
    Workflow.HEALTHCARE_DECISION_SUPPORT: ("clinic",),
}
# Execution providers of a Windows NPU fleet and of a Jetson-class module; every other on-device
# provider is a phone, tablet or handheld scanner NPU, every other gateway a plain site gateway.
WINDOWS_PROVIDERS = {ExecutionProvider.DIRECTML, ExecutionProvider.OPENVINO}
JETSON_PROVIDERS = {ExecutionProvider.TENSORRT, ExecutionProvider.CUDA}
IN_SERVICE = (Device.Status.PROVISIONING, Device.Status.ACTIVE)


def _device_hardware(placement: str, provider: str) -> ExistingHardware | None:
    if placement == FleetPlacement.ON_DEVICE:
        if provider in WINDOWS_PROVIDERS:
            return ExistingHardware.WINDOWS_NPU_FLEET
        return ExistingHardware.PHONES_TABLETS
    if placement == FleetPlacement.NEAR_EDGE:
        if provider in JETSON_PROVIDERS:
            return ExistingHardware.JETSON_CLASS
        return ExistingHardware.SITE_GATEWAY
    return None  # a cloud endpoint is not local hardware


def fleet_prefill(request: HttpRequest, workflow: str | None) -> dict[str, Any] | None:
    """Fleet-step answers read from the organisation's registered devices (read-only).

    Sites are those with a device in service (of the workflow's site kind when there are any);
    devices per site counts the endpoints (on-device hardware) per such site, rounded, or every
    device when no site has endpoints; hardware is what those devices are. None without devices.
    """
    rows = list(
        fleet_selectors.devices_for_org(org=request.org)
        .filter(status__in=IN_SERVICE)
        .values_list(
            "site_id",
            "site__name",
            "site__kind",
            "placement",
            "hardware_target__execution_provider",
        )
    )
    kinds = WORKFLOW_SITE_KINDS.get(workflow or "")
    if kinds and any(row[2] in kinds for row in rows):
        rows = [row for row in rows if row[2] in kinds]
    if not rows:
        return None
    sites = {row[0]: row[1] for row in rows}
    endpoints = Counter(row[0] for row in rows if row[3] == FleetPlacement.ON_DEVICE)
    per_site = endpoints if endpoints else Counter(row[0] for row in rows)
    devices_per_site = max(1, round(sum(per_site.values()) / len(sites)))
    hardware = {_device_hardware(row[3], row[4] or "") for row in rows} - {None}
    order = [item for item in ExistingHardware if item in hardware]
    gateways = sum(1 for row in rows if row[3] == FleetPlacement.NEAR_EDGE)
    handhelds = sum(1 for row in rows if row[3] == FleetPlacement.ON_DEVICE)
    return {
        "initial": {
            "sites": len(sites),
            "devices_per_site": devices_per_site,
            "existing_hardware": [str(item) for item in order],
        },
        "site_names": sorted(sites.values()),
        "gateways": gateways,
        "handhelds": handhelds,
        "hardware_labels": [HARDWARE_LABELS[item] for item in order],
    }


def answer_label(key: str) -> str:
    """A plain name for an answer key (``latency_tolerance_ms`` -> "Latency tolerance")."""
    label = FACT_LABELS.get(key, (key.replace("_", " "), ""))[0]
    return label[:1].upper() + label[1:]


def _key(request: HttpRequest) -> str:
    return f"{SESSION_PREFIX}{request.org.pk}"


def _state(request: HttpRequest) -> dict[str, Any]:
    state = request.session.get(_key(request)) or {}
    return {
        "answers": dict(state.get("answers") or {}),
        "drafts": dict(state.get("drafts") or {}),
        "draft_problems": dict(state.get("draft_problems") or {}),
        "name": state.get("name", ""),
        "source": state.get("source"),
    }


def _save_state(request: HttpRequest, state: dict[str, Any]) -> None:
    request.session[_key(request)] = state


def _done(step: WizardStep, answers: dict[str, Any]) -> bool:
    return bool(step.answer_keys) and all(key in answers for key in step.answer_keys)


def _first_open_step(answers: dict[str, Any]) -> WizardStep:
    for step in WIZARD_STEPS:
        if step.key in REQUIRED_STEP_KEYS and not _done(step, answers):
            return step
    return STEP_BY_KEY["result"]


def _neighbours(step: WizardStep) -> tuple[WizardStep | None, WizardStep | None]:
    index = WIZARD_STEPS.index(step)
    previous = WIZARD_STEPS[index - 1] if index > 0 else None
    following = WIZARD_STEPS[index + 1] if index + 1 < len(WIZARD_STEPS) else None
    return previous, following


def _step_url(request: HttpRequest, key: str) -> str:
    return reverse("roi:wizard-step", kwargs={"org": request.org.slug, "step": key})


def _answers_summary(answers: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(step key, label, value) of what has been answered, for the side panel."""
    rows: list[tuple[str, str, str]] = []
    if "workflow" in answers:
        rows.append(("workflow", "Workflow", Workflow(answers["workflow"]).label))
    if "latency_tolerance_ms" in answers:
        rows.append(("latency", "Latency tolerance", f"{answers['latency_tolerance_ms']:g} ms"))
    if "offline_share" in answers:
        outage = answers.get("longest_outage_hours") or 0
        rows.append(
            (
                "offline",
                "Offline",
                f"{answers['offline_share'] * 100:.3g} % of the time; longest {outage:g} h",
            )
        )
    if "privacy_risk" in answers:
        phi = ", PHI involved" if answers.get("phi_involved") else ""
        privacy = PRIVACY_LABELS.get(answers["privacy_risk"], answers["privacy_risk"])
        rows.append(("privacy", "Privacy risk", f"{privacy}{phi}"))
    if "model_changes_per_year" in answers:
        rows.append(("change", "Model changes", f"{answers['model_changes_per_year']:g} a year"))
    if "sites" in answers:
        hardware = ", ".join(
            HARDWARE_LABELS.get(h, h) for h in answers.get("existing_hardware") or []
        )
        complexity = answers.get("model_complexity", "medium")
        rows.append(
            (
                "fleet",
                "Fleet",
                f"{answers['sites']} site(s) x {answers['devices_per_site']} device(s); "
                f"{COMPLEXITY_LABELS.get(complexity, complexity)} model"
                + (f"; has {hardware}" if hardware else ""),
            )
        )
    return rows


def _context(
    request: HttpRequest, step: WizardStep, state: dict[str, Any], form: Any
) -> dict[str, Any]:
    answers = state["answers"]
    previous, following = _neighbours(step)
    return {
        "step": step,
        "steps": [
            {
                "step": item,
                "done": _done(item, answers),
                "current": item.key == step.key,
                "has_draft": item.key in state["drafts"]
                and (state.get("draft_problems") or {}).get(item.key, True),
            }
            for item in WIZARD_STEPS
        ],
        "step_number": WIZARD_STEPS.index(step) + 1,
        "step_count": len(WIZARD_STEPS),
        "previous": previous,
        "following": following,
        "form": form,
        "summary": _answers_summary(answers),
        "can_edit": can_edit(request),
        "source": state.get("source"),
        "workflow_hints": {str(key): hint for key, hint in WORKFLOW_HINTS.items()},
    }


def _render(
    request: HttpRequest, step: WizardStep, state: dict[str, Any], form: Any, *, status: int = 200
) -> HttpResponse:
    context = _context(request, step, state, form)
    if step.key == "fleet":
        context["fleet"] = fleet_prefill(request, state["answers"].get("workflow"))
    if step.key == "result":
        context.update(_result_context(state))
    return render_page(
        request,
        "roi/wizard.html",
        context,
        fragment="roi/partials/wizard_body.html",
        status=status,
    )


def _result_context(state: dict[str, Any]) -> dict[str, Any]:
    answers = state["answers"]
    missing = [
        STEP_BY_KEY[key] for key in REQUIRED_STEP_KEYS if not _done(STEP_BY_KEY[key], answers)
    ]
    if missing:
        return {"missing": missing, "result": None}
    try:
        result = decide(answers=WizardAnswers.from_dict(answers))
    except PlanningInputError as exc:
        errors = [(answer_label(key), reasons) for key, reasons in exc.fields.items()]
        return {"missing": [], "result": None, "result_errors": errors}
    return {"missing": [], "result": result.to_dict()}


@org_view()
def wizard(request: HttpRequest) -> HttpResponse:
    """Resume the wizard where it was left, or start it from a saved assessment's answers."""
    source = request.GET.get("from")
    if source:
        assessment = assessment_or_404(request, source)
        _save_state(
            request,
            {
                "answers": dict(assessment.answers),
                "drafts": {},
                "name": f"{assessment.name} (revised)"[:120],
                "source": {"id": assessment.pk, "name": assessment.name},
            },
        )
        return redirect("roi:wizard-step", org=request.org.slug, step="workflow")
    step = _first_open_step(_state(request)["answers"])
    return redirect("roi:wizard-step", org=request.org.slug, step=step.key)


@org_view()
def wizard_step(request: HttpRequest, step: str) -> HttpResponse:
    definition = STEP_BY_KEY.get(step)
    if definition is None:
        raise Http404("No such step.")
    state = _state(request)
    if definition.key == "result":
        return _result_step(request, definition, state)
    form_class = definition.form_class
    if request.method == "POST":
        form = form_class(request.POST, previous=state["answers"])
        target = request.POST.get("go", "next")
        valid = form.is_valid()
        if valid:
            state["answers"].update(form.to_answers())
            state["drafts"].pop(definition.key, None)
        if not valid and target == "next":
            # Forward needs this step's answers; show the reasons where they were typed.
            return _render(request, definition, state, form, status=invalid_status(request))
        if not valid:
            state["drafts"][definition.key] = {
                name: request.POST.getlist(name) for name in form.fields
            }
            # Leaving a step unanswered is not a mistake; only real errors flag the stepper.
            state.setdefault("draft_problems", {})[definition.key] = _has_problems(form)
        _save_state(request, state)
        _previous, following = _neighbours(definition)
        destination = STEP_BY_KEY.get(target) or following or definition
        return _go(request, destination, state)
    draft = state["drafts"].get(definition.key)
    if draft is not None:
        form = _draft_form(form_class, draft, state["answers"])  # the draft's real reasons
        status = 200
    else:
        form = _fresh_form(request, definition, state)
        status = 200
    return _render(request, definition, state, form, status=status)


def _fresh_form(request: HttpRequest, step: WizardStep, state: dict[str, Any]) -> Any:
    """The step's form from the answers so far; the fleet step not yet answered starts from
    the registered fleet (still editable: nothing is saved until the step is submitted)."""
    answers = state["answers"]
    initial = step.form_class.initial_from(answers)
    if step.key == "fleet" and not _done(step, answers):
        prefill = fleet_prefill(request, answers.get("workflow"))
        if prefill:
            initial = {**prefill["initial"], **initial}
    return step.form_class(initial=initial, previous=answers)


def _has_problems(form) -> bool:
    """True when the form has an error other than a field left empty."""
    return any(
        error.code != "required" for errors in form.errors.values() for error in errors.as_data()
    )


def _draft_form(form_class, draft: dict[str, list[str]], answers: dict):
    """A draft bound again to show what was typed, without calling empty fields errors: the
    step was left, not submitted."""
    form = form_class(_draft_data(draft), previous=answers)
    form.is_valid()
    for name in list(form.errors):
        kept = [e for e in form.errors[name].as_data() if e.code != "required"]
        if kept:
            form._errors[name] = form.error_class(kept)
        else:
            del form._errors[name]
    return form


def _draft_data(draft: dict[str, list[str]]):
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for name, values in draft.items():
        data.setlist(name, values)
    return data


def _go(request: HttpRequest, step: WizardStep, state: dict[str, Any]) -> HttpResponse:
    """Show ``step`` after a step was submitted: in place for HTMX, by redirect otherwise."""
    url = _step_url(request, step.key)
    if not wants_fragment(request):
        return redirect(url)
    if step.key == "result":
        form: Any = ResultStep(initial={"name": state.get("name", "")})
    else:
        draft = state["drafts"].get(step.key)
        if draft is not None:
            form = _draft_form(step.form_class, draft, state["answers"])
        else:
            form = _fresh_form(request, step, state)
    return push_url(_render(request, step, state, form), url)


def _result_step(request: HttpRequest, step: WizardStep, state: dict[str, Any]) -> HttpResponse:
    if request.method != "POST":
        form = ResultStep(initial={"name": state.get("name", "")})
        return _render(request, step, state, form)
    require_edit(request)
    form = ResultStep(request.POST)

    def save() -> Any:
        state["name"] = form.cleaned_data["name"]
        _save_state(request, state)  # the name is kept even when saving fails
        assessment = services.create_assessment(
            organization=request.org,
            actor=actor(request),
            answers=state["answers"],
            name=form.cleaned_data["name"],
        )
        request.session.pop(_key(request), None)
        return assessment

    return handle_form_post(
        request,
        form=form,
        perform=save,
        apply_error=_show_on_top,
        success_message=lambda assessment: f"Assessment \u201c{assessment.name}\u201d saved.",
        redirect_to=lambda assessment: resolve_url(
            "roi:assessment", org=request.org.slug, assessment_id=assessment.pk
        ),
        render_invalid=lambda status: _render(request, step, state, form, status=status),
    )


def _show_on_top(form: ResultStep, error: DomainError) -> None:
    """The answers' reasons belong to earlier steps: all of them go above the name."""
    form.add_error(None, error.message)
    for key, reasons in error.fields.items():
        for reason in reasons:
            form.add_error(None, f"{answer_label(key)}: {reason}")


@require_POST
@org_view()
def wizard_reset(request: HttpRequest) -> HttpResponse:
    """Forget the answers in progress (nothing saved is touched)."""
    request.session.pop(_key(request), None)
    return redirect("roi:wizard-step", org=request.org.slug, step="workflow")
