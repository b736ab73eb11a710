"""Model registry pages: models, versions, uploads, validation runs, signing, keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from fleet import selectors as fleet_selectors
from opshero.actors import Actor
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view

from . import reports, services, signing_services, uploads
from . import selectors as ms
from .forms import MlModelForm, ReviewForm, UploadForm, ValidateForm
from .models import MlModel, ModelVersion, SigningKey, ValidationRun


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _version_or_404(request, version_id: int) -> ModelVersion:
    version = ms.version_for_org(org=request.org, pk=version_id)
    if version is None:
        raise Http404("No such version.")
    return version


def _perms(request) -> dict:
    return {
        "can_manage": request.membership.can(Action.MANAGE_MODELS),
        "can_sign": request.membership.can(Action.SIGN_MODELS),
        "can_keys": request.membership.can(Action.MANAGE_SIGNING_KEYS),
        "can_review": request.membership.can(Action.REVIEW_VALIDATIONS),
    }


# --- models ---------------------------------------------------------------------------------------


@org_view()
def model_list(request: HttpRequest) -> HttpResponse:
    perms = _perms(request)
    form = MlModelForm(request.POST or None) if perms["can_manage"] else None
    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_MODELS,
            form=form,
            perform=lambda: services.create_model(
                organization=request.org, actor=_actor(request), **form.cleaned_data
            ),
            success_message=lambda model: f"{model.name} created; upload its first version.",
            redirect_to=lambda model: _model_url(request, model),
            render_invalid=lambda status: _model_list_page(request, form, status),
        )
    return _model_list_page(request, form)


def _model_list_page(request, form, status: int = 200) -> HttpResponse:
    perms = _perms(request)
    context = {
        **perms,
        "models": ms.models_for_org(org=request.org),
        "form": form,
        "has_key": SigningKey.objects.filter(
            organization=request.org, status=SigningKey.Status.ACTIVE
        ).exists(),
    }
    return render(request, "modelregistry/model_list.html", context, status=status)


def _model_url(request, model: MlModel) -> str:
    return resolve_url("modelregistry:model", org=request.org.slug, model_id=model.pk)


def _model_page(request, model: MlModel, *, upload_form=None, gates_form=None, status=200):
    versions = list(ms.versions_for_model(model=model))
    latest_runs = {}
    for run in (
        ValidationRun.objects.filter(version__model=model, finished_at__isnull=False)
        .select_related("target")
        .order_by("finished_at", "pk")
    ):
        latest_runs[run.version_id] = run
    for version in versions:
        version.headline = reports.headline(latest_runs.get(version.pk))
    perms = _perms(request)
    context = {
        **perms,
        "model": model,
        "versions": versions,
        "upload_form": upload_form or (UploadForm() if perms["can_manage"] else None),
        "gates_form": gates_form
        or (
            MlModelForm(initial={f: getattr(model, f) for f in services.MODEL_FIELDS})
            if perms["can_manage"]
            else None
        ),
        "max_upload": settings.MODEL_UPLOAD_MAX_BYTES,
    }
    return render(request, "modelregistry/model_detail.html", context, status=status)


def _model_or_404(request, model_id: int) -> MlModel:
    model = ms.model_for_org(org=request.org, pk=model_id)
    if model is None:
        raise Http404("No such model.")
    return model


@org_view()
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if request.method == "POST":
        form = MlModelForm(request.POST)
        return handle_form_post(
            request,
            action=Action.MANAGE_MODELS,
            form=form,
            perform=lambda: services.update_model(
                model=model, actor=_actor(request), **form.cleaned_data
            ),
            success_message="Gates updated; they apply to new validation runs.",
            redirect_to=lambda _: _model_url(request, model),
            render_invalid=lambda status: _model_page(
                request, model, gates_form=form, status=status
            ),
        )
    return _model_page(request, model)


@csrf_exempt
def version_upload(request: HttpRequest, org: str, model_id: int) -> HttpResponse:
    """Streamed upload: the hashing handler must be in place before anything reads the body,
    CSRF check included (Django's documented pattern: exempt here, protect inside)."""
    too_large = None
    if request.method == "POST":
        too_large = uploads.install(request, max_bytes=settings.MODEL_UPLOAD_MAX_BYTES)
    return _version_upload(request, org, model_id=model_id, too_large=too_large)


@csrf_protect
@require_POST
@org_view(Action.MANAGE_MODELS)
def _version_upload(request: HttpRequest, model_id: int, too_large: int | None) -> HttpResponse:
    model = _model_or_404(request, model_id)
    form = UploadForm(request.POST, request.FILES) if too_large is None else UploadForm()
    limit = settings.MODEL_UPLOAD_MAX_BYTES
    if too_large is not None or uploads.was_cut_off(request):
        form.add_error(
            None, f"The upload is larger than the limit of {limit:,} bytes ({limit >> 20} MB)."
        )
        return _model_page(request, model, upload_form=form, status=413)

    def upload():
        data = form.cleaned_data
        return services.upload_version(
            model=model,
            actor=_actor(request),
            artifact=data["artifact"],
            version=data["version"],
            release_notes=data["release_notes"],
            inputs_file=data["inputs_file"],
            shape_buckets=data["shape_buckets"],
            io_contract=data.get("io_contract"),
        )

    def to_version(version: ModelVersion) -> str | HttpResponse:
        target = f"/o/{request.org.slug}/models/versions/{version.pk}/"
        if request.htmx:  # the upload card posts with htmx: navigate the whole page
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return target

    return handle_form_post(
        request,
        form=form,
        perform=upload,
        success_message=lambda version: f"Version {version.version} uploaded; validate it next.",
        redirect_to=to_version,
        render_invalid=lambda status: _model_page(request, model, upload_form=form, status=status),
    )


@require_POST
@org_view(Action.MANAGE_MODELS)
def upload_shape_editor(request: HttpRequest, model_id: int) -> HttpResponse:
    """The upload form's shape editor (an htmx fragment): the chosen file is read and one box
    per dynamic axis comes back, prefilled with a suggested size. Nothing is stored."""
    _model_or_404(request, model_id)
    axes = services.open_axes_of_upload(artifact=request.FILES.get("artifact"))
    form = UploadForm(axes=axes or [])
    return render(
        request,
        "modelregistry/partials/upload_shape_editor.html",
        {"form": form, "readable": axes is not None},
    )


# --- versions -------------------------------------------------------------------------------------


def _version_context(request, version: ModelVersion, **extra) -> dict:
    runs = list(ms.runs_for_version(version=version))
    selected = None
    run_id = str(extra.pop("selected_run_id", "") or request.GET.get("run") or "")
    if run_id:
        selected = next((r for r in runs if str(r.pk) == run_id), None)
    selected = selected or next((r for r in runs if r.report), None) or (runs[0] if runs else None)
    targets = fleet_selectors.targets_for_org(org=request.org)
    perms = _perms(request)
    metadata = version.metadata or {}
    return {
        **perms,
        "version": version,
        "model": version.model,
        "metadata": metadata,
        "operators": metadata.get("operator_inventory", []),
        "runs": runs,
        "run": selected,
        "progress": reports.step_progress(selected) if selected else None,
        "report": reports.report_view(selected) if selected else None,
        "validate_form": extra.pop("validate_form", None)
        or (
            ValidateForm(
                targets=targets,
                version=version,
                initial={"target": targets.filter(builtin_key="cpu").first() or targets.first()},
            )
            if perms["can_manage"]
            else None
        ),
        "review_form": extra.pop("review_form", None)
        or (
            ReviewForm()
            if perms["can_review"] and selected and selected.status == "needs_review"
            else None
        ),
        "evidence": evidence_rows(version),
        "signing": signing_services.signing_blockers(version, request.user),
        "contract": version.io_contract,
        "download_name": ms.download_name(version),
        "signatures": list(ms.signatures_for_version(version=version)),
        "signature": ms.latest_signature(version=version),
        "latest_finished": ms.latest_finished_run(version=version),
        "has_key": SigningKey.objects.filter(
            organization=request.org, status=SigningKey.Status.ACTIVE
        ).exists(),
        "siblings": ms.versions_for_model(model=version.model).exclude(pk=version.pk)[:20],
        **extra,
    }


def evidence_rows(version: ModelVersion) -> list[dict]:
    """One row per target this version was validated on: its newest finished run."""
    rows = []
    for run in sorted(
        services.latest_runs_by_target(version).values(), key=lambda r: r.target.name
    ):
        rows.append(
            {
                "run": run,
                "target": run.target,
                "signable": run.status == ValidationRun.Status.PASSED,
                "accuracy_measured": signing_services.accuracy_measured(run),
            }
        )
    return rows


@org_view()
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(request, version_id)
    context = _version_context(request, version)
    return render(request, "modelregistry/version_detail.html", context)


@require_POST
@org_view(Action.MANAGE_MODELS)
def version_validate(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(request, version_id)
    targets = fleet_selectors.targets_for_org(org=request.org)
    form = ValidateForm(request.POST, targets=targets, version=version)

    def page(status: int) -> HttpResponse:
        version.refresh_from_db()
        context = _version_context(request, version, validate_form=form)
        return render(request, "modelregistry/version_detail.html", context, status=status)

    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.start_validation(
            version=version,
            target=form.cleaned_data["target"],
            actor=_actor(request),
            shape_buckets=form.cleaned_data["shape_buckets"],
            use_uploaded_inputs=form.cleaned_data["use_uploaded_inputs"],
        ),
        success_message=lambda run: f"Validation #{run.number} on {run.target.name} queued.",
        redirect_to=lambda run: f"/o/{request.org.slug}/models/versions/{version.pk}/?run={run.pk}",
        render_invalid=page,
    )


@require_POST
@org_view(Action.REVIEW_VALIDATIONS)
def run_review(request: HttpRequest, run_id: int) -> HttpResponse:
    """An approver accepts or rejects a run that needs review, with a reason."""
    run = ms.run_for_org(org=request.org, pk=run_id)
    if run is None:
        raise Http404("No such run.")
    form = ReviewForm(request.POST)
    page_url = f"/o/{request.org.slug}/models/versions/{run.version_id}/?run={run.pk}"

    def page(status: int) -> HttpResponse:
        context = _version_context(request, run.version, review_form=form, selected_run_id=run.pk)
        return render(request, "modelregistry/version_detail.html", context, status=status)

    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.review_validation_run(
            run=run,
            actor=_actor(request),
            decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"],
        ),
        success_message=lambda done: (
            f"Run #{done.number} {'accepted' if done.status == 'passed' else 'rejected'}."
        ),
        redirect_to=lambda _: page_url,
        render_invalid=page,
    )


@require_GET
@org_view()
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The polled progress fragment; once the run has finished it asks for a full reload so
    the report appears (and polling stops)."""
    run = ms.run_for_org(org=request.org, pk=run_id)
    if run is None:
        raise Http404("No such run.")
    response = render_page(
        request,
        "modelregistry/partials/run_progress.html",
        {"run": run, "progress": reports.step_progress(run)},
        fragment="modelregistry/partials/run_progress.html",
    )
    if run.is_measured and request.htmx and request.GET.get("poll"):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@org_view(Action.SIGN_MODELS)
def version_sign(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(request, version_id)
    try:
        signature = signing_services.sign_version(
            version=version,
            actor=_actor(request),
            role=request.membership.role,
            accuracy_waiver=request.POST.get("accuracy_waiver", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Signed {version.model.name} {version.version} as release "
            f"{signature.release_counter}; valid until {signature.expires_at:%Y-%m-%d}.",
        )
    return redirect(f"/o/{request.org.slug}/models/versions/{version.pk}/")


@require_POST
@org_view(Action.MANAGE_MODELS)
def version_retire(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(request, version_id)
    try:
        services.retire_version(version=version, actor=_actor(request))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Version {version.version} retired.")
    return redirect(f"/o/{request.org.slug}/models/versions/{version.pk}/")


@require_POST
@org_view(Action.MANAGE_MODELS)
def variant_register(request: HttpRequest, run_id: int, kind: str) -> HttpResponse:
    run = ms.run_for_org(org=request.org, pk=run_id)
    if run is None or kind not in ("int8", "fp16"):
        raise Http404("No such run or variant.")
    label = (request.POST.get("version") or "").strip() or f"{run.version.version}-{kind}"
    try:
        version = services.register_variant(
            run=run,
            kind=kind,
            actor=_actor(request),
            version=label,
            override_reason=request.POST.get("override_reason", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(f"/o/{request.org.slug}/models/versions/{run.version_id}/?run={run.pk}")
    messages.success(request, f"Registered {kind.upper()} variant as version {version.version}.")
    return redirect(f"/o/{request.org.slug}/models/versions/{version.pk}/")


@require_GET
@org_view()
def version_artifact(request: HttpRequest, version_id: int) -> FileResponse:
    version = _version_or_404(request, version_id)
    response = FileResponse(
        version.artifact.open("rb"), as_attachment=True, filename=ms.download_name(version)
    )
    response["X-Content-SHA256"] = version.sha256
    return response


@require_GET
@org_view()
def version_envelope(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(request, version_id)
    signature = ms.latest_signature(version=version)
    if signature is None:
        raise Http404("This version has no valid signature.")
    response = HttpResponse(signature.envelope, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{ms.download_name(version, ".sig")}"'
    return response


COMPARED_FIGURES = [
    ("P50 ms", "p50_ms"),
    ("P95 ms", "p95_ms"),
    ("Operators supported", "supported_share"),
    ("INT8 drop (points)", "int8_drop"),
    ("Accuracy", "accuracy"),
    ("ECE", "ece"),
    ("Passed gates", "passed"),
]


def version_comparison(versions: list[ModelVersion]) -> tuple[list, list]:
    """Rows of two (or more) versions side by side: their metadata, and the headline figures
    of their latest runs (``version.headline``, set by the caller; the rollout approval queue
    reuses this with headlines it read in one query)."""
    rows = [
        ("Status", [v.get_status_display() for v in versions]),
        ("Size", [v.size_bytes for v in versions]),
        ("SHA-256", [v.sha256[:16] + "…" for v in versions]),
        ("Quantization", [v.metadata.get("quantization", "—") for v in versions]),
        ("Parameters", [v.metadata.get("parameter_count") for v in versions]),
        (
            "Opsets",
            [
                ", ".join(
                    f"{o['domain'] or 'ai.onnx'} {o['version']}"
                    for o in v.metadata.get("opset_imports", [])
                )
                for v in versions
            ],
        ),
        ("Derived from", [v.derived_from.version if v.derived_from else "—" for v in versions]),
    ]
    figure_rows = [
        (label, [getattr(v, "headline", {}).get(key) for v in versions])
        for label, key in COMPARED_FIGURES
    ]
    return rows, figure_rows


@require_GET
@org_view()
def version_compare(request: HttpRequest) -> HttpResponse:
    """Two versions side by side: metadata and the figures of their latest runs."""
    ids = [request.GET.get("a"), request.GET.get("b")]
    versions = []
    for value in ids:
        try:
            version = ms.version_for_org(org=request.org, pk=int(value))
        except (TypeError, ValueError):
            version = None
        if version is None:
            raise Http404("Choose two versions of your organisation to compare.")
        version.headline = reports.headline(ms.latest_finished_run(version=version))
        versions.append(version)
    rows, figure_rows = version_comparison(versions)
    context = {"versions": versions, "rows": rows, "figure_rows": figure_rows}
    return render(request, "modelregistry/compare.html", context)


@require_GET
@org_view()
def signing_key_pem(request: HttpRequest, key_pk: int) -> HttpResponse:
    """A public key as a PEM file, for `python -m protocol.verify --public-key`."""
    key = SigningKey.objects.filter(organization=request.org, pk=key_pk).first()
    if key is None:
        raise Http404("No such key.")
    response = HttpResponse(key.public_pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="opshero-{key.key_id[:16]}.pem"'
    return response


# --- signing keys ---------------------------------------------------------------------------------


@org_view()
def signing_keys(request: HttpRequest) -> HttpResponse:
    perms = _perms(request)
    if request.method == "POST":
        if not perms["can_keys"]:
            raise Http404("Nothing to change here.")
        action = request.POST.get("action")
        try:
            if action == "create":
                key = signing_services.create_signing_key(
                    organization=request.org, actor=_actor(request)
                )
                messages.success(request, f"Signing key {key.key_id[:16]}… created.")
            elif action == "rotate":
                key = signing_services.rotate_signing_key(
                    organization=request.org, actor=_actor(request)
                )
                messages.success(
                    request,
                    f"Rotated: new key {key.key_id[:16]}…; live signatures were re-signed.",
                )
            elif action == "retire":
                key = SigningKey.objects.filter(
                    organization=request.org, pk=request.POST.get("key")
                ).first()
                if key is None:
                    raise Http404("No such key.")
                signing_services.retire_signing_key(key=key, actor=_actor(request))
                messages.success(request, f"Key {key.key_id[:16]}… retired.")
            else:
                messages.error(request, "Unknown action.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("modelregistry:signing-keys", org=request.org.slug)
    context = {**perms, "keys": ms.signing_keys_for_org(org=request.org)}
    return render(request, "modelregistry/signing_keys.html", context)
