"""Fleet pages: device list, device and site pages, groups, hardware targets, enrollment, CSV."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.html import format_html_join
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from opshero.actors import Actor
from opshero.errors import DomainError, TooLarge
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view

from . import device_csv, device_panels, selectors, services
from .enrollment import gateway_command
from .filters import DeviceFilterSet
from .forms import (
    CsvImportForm,
    DeviceForm,
    EnrollmentTokenForm,
    GroupForm,
    OperatingPolicyForm,
    ReasonForm,
    SiteForm,
    TargetForm,
)
from .models import POLICY_FIELDS, Device, DeviceGroup, Site

PAGE_SIZE = 50


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _device_or_404(request, device_id: int) -> Device:
    device = selectors.device_for_org(org=request.org, pk=device_id)
    if device is None:
        raise Http404("No such device.")
    return device


def _device_url(request, device: Device) -> str:
    return resolve_url("fleet:device", org=request.org.slug, device_id=device.pk)


def _site_url(request, site) -> str:
    return resolve_url("fleet:site", org=request.org.slug, site_id=site.pk)


def _group_url(request, group) -> str:
    return resolve_url("fleet:group", org=request.org.slug, group_id=group.pk)


def _target_url(request, target) -> str:
    return resolve_url("fleet:target", org=request.org.slug, target_id=target.pk)


def _fleet_context(request, tab: str, **extra) -> dict:
    return {
        "tab": tab,
        "can_manage": request.membership.can(Action.MANAGE_FLEET),
        "can_enroll": request.membership.can(Action.ENROLL_DEVICES),
        "can_revoke": request.membership.can(Action.REVOKE_DEVICES),
        **extra,
    }


# --- device list ----------------------------------------------------------------------------------


def _options(choices: list[tuple[str, str]], selected) -> str:
    selected = str(selected or "")
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((pk, " selected" if pk == selected else "", name) for pk, name in choices),
    )


@require_GET
@org_view()
def device_list(request: HttpRequest) -> HttpResponse:
    filters = DeviceFilterSet(request.GET)
    devices = selectors.devices_for_org(org=request.org, filters=filters)
    page = Paginator(devices, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("ordering", None)
    values = filters.values()
    context = _fleet_context(
        request,
        "devices",
        page=page,
        filters=values,
        form=filters.form,
        querystring=query.urlencode(),
        sort_querystring=sort_query.urlencode(),
        counts=selectors.connectivity_counts(org=request.org),
        # Hundreds of sites: options are built here, not by a template loop (10x faster).
        site_options=_options(selectors.site_choices(org=request.org), values["site"]),
        target_options=_options(selectors.target_choices(org=request.org), values["target"]),
        offline_minutes=settings.DEVICE_OFFLINE_AFTER_SECONDS // 60,
    )
    return render_page(
        request, "fleet/device_list.html", context, fragment="fleet/partials/device_table.html"
    )


@org_view(Action.MANAGE_FLEET)
def device_new(request: HttpRequest) -> HttpResponse:
    targets = selectors.targets_for_org(org=request.org)
    form = DeviceForm(request.POST or None, org=request.org, targets=targets)

    def page(status: int = 200) -> HttpResponse:
        context = _fleet_context(request, "devices", form=form)
        return render(request, "fleet/device_form.html", context, status=status)

    if request.method == "POST":
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.register_device(
                organization=request.org, actor=_actor(request), **form.cleaned_data
            ),
            success_message=lambda device: f"{device.name} is registered; enroll its gateway next.",
            redirect_to=lambda device: _device_url(request, device),
            render_invalid=page,
        )
    return page()


@org_view()
def device_detail(request: HttpRequest, device_id: int) -> HttpResponse:
    device = _device_or_404(request, device_id)
    targets = selectors.targets_for_org(org=request.org)
    form = None
    if request.membership.can(Action.MANAGE_FLEET) and device.status != Device.Status.RETIRED:
        initial = {
            "name": device.name,
            "serial": device.serial,
            "site": device.site_id,
            "placement": device.placement,
            "hardware_target": device.hardware_target_id,
            "tags": device.tags,
            "notes": device.notes,
        }
        form = DeviceForm(request.POST or None, initial=initial, org=request.org, targets=targets)

    def page(status: int = 200) -> HttpResponse:
        context = _fleet_context(
            request,
            "devices",
            device=device,
            form=form,
            credential=selectors.active_credential(device),
            credentials=list(device.credentials.all()[:10]),
            policy=selectors.effective_policy(device=device),
            events=selectors.audit_events_for_device(device=device),
            offline_minutes=settings.DEVICE_OFFLINE_AFTER_SECONDS // 60,
            panels=device_panels.render_panels(request, device),
        )
        return render(request, "fleet/device_detail.html", context, status=status)

    if request.method == "POST":  # no form for a retired device: nothing to change
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.update_device(
                device=device, actor=_actor(request), **form.cleaned_data
            ),
            success_message="Device updated.",
            redirect_to=lambda _: _device_url(request, device),
            render_invalid=page,
        )
    return page()


def _device_action(request, device_id: int, action, verb: str) -> HttpResponse:
    device = _device_or_404(request, device_id)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        action(device=device, actor=_actor(request), reason=reason)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{device.name} was {verb}.")
    return redirect("fleet:device", org=request.org.slug, device_id=device.pk)


@require_POST
@org_view(Action.REVOKE_DEVICES)
def device_revoke(request: HttpRequest, device_id: int) -> HttpResponse:
    return _device_action(request, device_id, services.revoke_device, "revoked")


@require_POST
@org_view(Action.REVOKE_DEVICES)
def device_retire(request: HttpRequest, device_id: int) -> HttpResponse:
    return _device_action(request, device_id, services.retire_device, "retired")


@require_GET
@org_view()
def device_export(request: HttpRequest) -> HttpResponse:
    devices = selectors.devices_for_org(org=request.org, filters=DeviceFilterSet(request.GET))
    response = HttpResponse(device_csv.export_devices_csv(devices), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{request.org.slug}-devices.csv"'
    return response


@org_view(Action.MANAGE_FLEET)
def device_import(request: HttpRequest) -> HttpResponse:
    form = CsvImportForm(request.POST or None, request.FILES or None)
    row_errors: dict[str, list[str]] = {}

    def page(status: int = 200, created=None) -> HttpResponse:
        context = _fleet_context(
            request,
            "import",
            form=form,
            row_errors=row_errors,
            created=created,
            columns=device_csv.COLUMNS,
            max_bytes=settings.FLEET_CSV_MAX_BYTES,
            max_rows=settings.FLEET_CSV_MAX_ROWS,
        )
        return render(request, "fleet/device_import.html", context, status=status)

    def import_file():
        upload = form.cleaned_data["file"]
        if upload.size > settings.FLEET_CSV_MAX_BYTES:
            raise TooLarge(
                f"The file is {upload.size:,} bytes; the limit is "
                f"{settings.FLEET_CSV_MAX_BYTES:,}. Split it into several files.",
                fields={"file": ["Too large."]},
            )
        return device_csv.import_devices_csv(
            organization=request.org, data=upload.read(), actor=_actor(request)
        )

    def show_import_error(form: CsvImportForm, exc: DomainError) -> None:
        # Reasons of a CSV line go to the table of rows; the rest belong to the file.
        form.add_error(None, exc.message)
        row_errors.update({k: v for k, v in exc.fields.items() if k.startswith("line ")})
        for key, reasons in exc.fields.items():
            if not key.startswith("line "):
                for reason in reasons:
                    form.add_error("file", reason)

    if request.method == "POST":
        return handle_form_post(
            request,
            form=form,
            perform=import_file,
            apply_error=show_import_error,
            success_message=lambda created: f"Imported {len(created)} devices.",
            # The answer is the report of what was imported, not a redirect.
            redirect_to=lambda created: page(201, created),
            render_invalid=page,
        )
    return page()


# --- sites ----------------------------------------------------------------------------------------


@org_view()
def site_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.membership.can(Action.MANAGE_FLEET)
    form = SiteForm(request.POST or None) if can_manage else None

    def page(status: int = 200) -> HttpResponse:
        context = _fleet_context(
            request, "sites", sites=selectors.sites_for_org(org=request.org), form=form
        )
        return render(request, "fleet/site_list.html", context, status=status)

    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.create_site(
                organization=request.org, actor=_actor(request), **form.cleaned_data
            ),
            success_message=lambda site: f"Site {site.name} was added.",
            redirect_to=lambda site: _site_url(request, site),
            render_invalid=page,
        )
    return page()


def _site_or_404(request, site_id: int) -> Site:
    site = selectors.sites_for_org(org=request.org).filter(pk=site_id).first()
    if site is None:
        raise Http404("No such site.")
    return site


def _policy_initial(values: dict) -> dict:
    return {name: values[name] for name in POLICY_FIELDS}


def _site_page(request, site: Site, *, form, policy_form, status: int = 200) -> HttpResponse:
    devices = selectors.devices_for_org(org=request.org).filter(site=site)[:200]
    context = _fleet_context(
        request,
        "sites",
        site=site,
        form=form,
        devices=devices,
        counts=selectors.connectivity_counts(org=request.org, site=site),
        days=["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        policy=selectors.effective_site_policy(site=site),
        policy_form=policy_form,
        policy_revisions=selectors.policy_revisions(org=request.org, site=site),
        kind_defaults=selectors.policy_defaults(site.kind),
    )
    return render(request, "fleet/site_detail.html", context, status=status)


def _site_policy_form(request, site: Site, data=None) -> OperatingPolicyForm | None:
    if not request.membership.can(Action.MANAGE_FLEET):
        return None
    initial = _policy_initial(selectors.effective_site_policy(site=site).values())
    return OperatingPolicyForm(data, initial=initial)


@org_view()
def site_detail(request: HttpRequest, site_id: int) -> HttpResponse:
    site = _site_or_404(request, site_id)
    can_manage = request.membership.can(Action.MANAGE_FLEET)
    form = (
        SiteForm(request.POST or None, initial=SiteForm.initial_for(site)) if can_manage else None
    )
    policy_form = _site_policy_form(request, site)

    def page(status: int = 200) -> HttpResponse:
        return _site_page(request, site, form=form, policy_form=policy_form, status=status)

    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.update_site(
                site=site, actor=_actor(request), **form.cleaned_data
            ),
            success_message="Site updated.",
            redirect_to=lambda _: _site_url(request, site),
            render_invalid=page,
        )
    return page()


@require_POST
@org_view(Action.MANAGE_FLEET)
def site_policy(request: HttpRequest, site_id: int) -> HttpResponse:
    """Save the site's operating policy (the form on the site page)."""
    site = _site_or_404(request, site_id)
    form = SiteForm(initial=SiteForm.initial_for(site))
    policy_form = _site_policy_form(request, site, request.POST)
    return handle_form_post(
        request,
        form=policy_form,
        perform=lambda: services.set_operating_policy(
            organization=request.org, actor=_actor(request), site=site, **policy_form.cleaned_data
        ),
        success_message=lambda p: f"Operating policy saved (revision {p.revision}).",
        redirect_to=lambda _: _site_url(request, site) + "#operating-policy",
        render_invalid=lambda status: _site_page(
            request, site, form=form, policy_form=policy_form, status=status
        ),
    )


@require_POST
@org_view(Action.MANAGE_FLEET)
def site_policy_clear(request: HttpRequest, site_id: int) -> HttpResponse:
    """Put the site back on its kind's defaults."""
    site = _site_or_404(request, site_id)
    policy = selectors.operating_policy_for_site(org=request.org, site=site)
    if policy is None:
        messages.info(request, "This site already uses the defaults.")
    else:
        services.clear_operating_policy(policy=policy, actor=_actor(request))
        messages.success(request, "The site uses the defaults of its kind again.")
    return redirect(_site_url(request, site) + "#operating-policy")


@require_POST
@org_view(Action.MANAGE_FLEET)
def site_delete(request: HttpRequest, site_id: int) -> HttpResponse:
    site = selectors.site_for_org(org=request.org, pk=site_id)
    if site is None:
        raise Http404("No such site.")
    try:
        services.delete_site(site=site, actor=_actor(request))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("fleet:site", org=request.org.slug, site_id=site.pk)
    messages.success(request, f"Site {site.name} was deleted.")
    return redirect("fleet:sites", org=request.org.slug)


# --- enrollment -----------------------------------------------------------------------------------


@never_cache
@org_view(Action.ENROLL_DEVICES)
def enroll(request: HttpRequest) -> HttpResponse:
    """Create a one-time token; it is shown in this response only and never again."""
    targets = selectors.targets_for_org(org=request.org)
    initial = {}
    if request.GET.get("site"):
        initial["site"] = request.GET["site"]
    form = EnrollmentTokenForm(
        request.POST or None, initial=initial, org=request.org, targets=targets
    )
    reenroll = None
    if request.GET.get("device") or request.POST.get("device"):
        reenroll = selectors.device_for_org(
            org=request.org, pk=_int(request.POST.get("device") or request.GET.get("device"))
        )

    def page(status: int = 200, created=None) -> HttpResponse:
        context = _fleet_context(
            request,
            "enroll",
            form=form,
            created=created,
            reenroll=reenroll,
            tokens=selectors.enrollment_tokens_for_org(org=request.org)[:25],
            has_sites=selectors.sites_for_org(org=request.org).exists(),
        )
        return render(request, "fleet/enroll.html", context, status=status)

    def create_token() -> None:
        data = form.cleaned_data
        record, token = services.create_enrollment_token(
            organization=request.org,
            site=data["site"],
            actor=_actor(request),
            placement=data["placement"],
            hardware_target=data["hardware_target"],
            expires_in=timedelta(hours=data["expires_in_hours"]),
            note=data["note"],
            device=reenroll,
        )
        # Post/redirect/get: a reload must not create a second token. The token waits
        # in the session for exactly one page view, then only its hash remains.
        request.session[NEW_TOKEN_SESSION_KEY] = {
            "record": record.pk,
            "token": token,
            "command": gateway_command(
                server=request.build_absolute_uri("/").rstrip("/"),
                token=token,
                serial=reenroll.serial if reenroll else None,
            ),
        }

    if request.method == "POST":
        return handle_form_post(
            request,
            form=form,
            perform=create_token,
            success_message=None,
            redirect_to=lambda _: resolve_url("fleet:enroll", org=request.org.slug),
            render_invalid=page,
        )
    created = None
    shown = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    if shown:
        record = (
            selectors.enrollment_tokens_for_org(org=request.org).filter(pk=shown["record"]).first()
        )
        if record is not None:
            created = {**shown, "record": record}
    return page(created=created)


NEW_TOKEN_SESSION_KEY = "opshero_new_enrollment_token"  # noqa: S105 - a session key name


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- groups ---------------------------------------------------------------------------------------


def _group_form(request, data=None, initial=None) -> GroupForm:
    return GroupForm(
        data,
        initial=initial,
        sites=selectors.sites_for_org(org=request.org).only("pk", "name"),
        targets=selectors.targets_for_org(org=request.org).only("pk", "name"),
        devices=selectors.devices_for_org(org=request.org).exclude(status=Device.Status.RETIRED)[
            :2000
        ],
    )


@org_view()
def group_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.membership.can(Action.MANAGE_FLEET)
    form = _group_form(request, request.POST or None) if can_manage else None
    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.create_group(
                organization=request.org,
                actor=_actor(request),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules=form.rules(),
                static_members=form.cleaned_data["static_members"],
            ),
            success_message=lambda group: f"Group {group.name} was created.",
            redirect_to=lambda group: _group_url(request, group),
            render_invalid=lambda status: _group_list_page(request, form, status),
        )
    return _group_list_page(request, form)


def _group_list_page(request, form, status: int = 200) -> HttpResponse:
    groups = selectors.with_member_counts(
        org=request.org, groups=selectors.groups_for_org(org=request.org)
    )
    context = _fleet_context(request, "groups", groups=groups, form=form)
    return render(request, "fleet/group_list.html", context, status=status)


def _group_initial(group: DeviceGroup) -> dict:
    rules = group.rules
    return {
        "name": group.name,
        "description": group.description,
        "site_ids": rules.get("site_ids", []),
        "site_kinds": rules.get("site_kinds", []),
        "tags": ", ".join(rules.get("tags", [])),
        "placements": rules.get("placements", []),
        "target_ids": rules.get("target_ids", []),
        "static_members": list(group.static_members.values_list("pk", flat=True)),
    }


@org_view()
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    group = selectors.group_for_org(org=request.org, pk=group_id)
    if group is None:
        raise Http404("No such group.")
    can_manage = request.membership.can(Action.MANAGE_FLEET)
    form = _group_form(request, request.POST or None, _group_initial(group)) if can_manage else None
    policy_form = _group_policy_form(request, group)

    def page(status: int = 200) -> HttpResponse:
        return _group_page(request, group, form=form, policy_form=policy_form, status=status)

    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.update_group(
                group=group,
                actor=_actor(request),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules=form.rules(),
                static_members=form.cleaned_data["static_members"],
            ),
            success_message="Group updated.",
            redirect_to=lambda _: _group_url(request, group),
            render_invalid=page,
        )
    return page()


def _group_page(
    request, group: DeviceGroup, *, form, policy_form, status: int = 200
) -> HttpResponse:
    members = selectors.members_of(group)
    context = _fleet_context(
        request,
        "groups",
        group=group,
        form=form,
        members=members[:100],
        member_count=members.count(),
        group_policy=selectors.operating_policy_for_group(org=request.org, group=group),
        policy_form=policy_form,
        policy_revisions=selectors.policy_revisions(org=request.org, group=group),
    )
    return render(request, "fleet/group_detail.html", context, status=status)


def _group_policy_form(request, group: DeviceGroup, data=None) -> OperatingPolicyForm | None:
    if not request.membership.can(Action.MANAGE_FLEET):
        return None
    policy = selectors.operating_policy_for_group(org=request.org, group=group)
    values = policy.values() if policy is not None else selectors.policy_defaults("")
    return OperatingPolicyForm(data, initial=_policy_initial(values))


def _group_or_404(request, group_id: int) -> DeviceGroup:
    group = selectors.group_for_org(org=request.org, pk=group_id)
    if group is None:
        raise Http404("No such group.")
    return group


@require_POST
@org_view(Action.MANAGE_FLEET)
def group_policy(request: HttpRequest, group_id: int) -> HttpResponse:
    """Save the group's policy override (a lane)."""
    group = _group_or_404(request, group_id)
    policy_form = _group_policy_form(request, group, request.POST)

    def page(status: int) -> HttpResponse:
        # The rules form is not posted here: show it as saved.
        form = _group_form(request, None, _group_initial(group))
        return _group_page(request, group, form=form, policy_form=policy_form, status=status)

    return handle_form_post(
        request,
        form=policy_form,
        perform=lambda: services.set_operating_policy(
            organization=request.org,
            actor=_actor(request),
            group=group,
            **policy_form.cleaned_data,
        ),
        success_message=lambda p: f"Lane override saved (revision {p.revision}).",
        redirect_to=lambda _: _group_url(request, group) + "#operating-policy",
        render_invalid=page,
    )


@require_POST
@org_view(Action.MANAGE_FLEET)
def group_policy_clear(request: HttpRequest, group_id: int) -> HttpResponse:
    """Remove the group's override: its devices follow their sites' policies again."""
    group = _group_or_404(request, group_id)
    policy = selectors.operating_policy_for_group(org=request.org, group=group)
    if policy is None:
        messages.info(request, "This group has no override.")
    else:
        services.clear_operating_policy(policy=policy, actor=_actor(request))
        messages.success(request, "Override removed: devices follow their sites' policies.")
    return redirect(_group_url(request, group) + "#operating-policy")


@require_POST
@org_view(Action.MANAGE_FLEET)
def group_preview(request: HttpRequest) -> HttpResponse:
    """Who the rules being edited would match, before saving (HTMX fragment)."""
    form = _group_form(request, request.POST)
    form.is_valid()
    if "name" in form.errors:
        del form.errors["name"]  # the preview does not need a name
    error = None
    members = Device.objects.none()
    if not form.errors:
        try:
            rules = services.clean_group_rules(request.org, form.rules())
            members = selectors.group_members(
                org=request.org, rules=rules, static_ids=form.cleaned_data.get("static_members")
            )
        except DomainError as exc:
            error = exc.message
    else:
        error = "Some choices are not valid."
    return render(
        request,
        "fleet/partials/group_preview.html",
        {"members": members[:50], "member_count": members.count(), "error": error},
    )


@require_POST
@org_view(Action.MANAGE_FLEET)
def group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    group = selectors.group_for_org(org=request.org, pk=group_id)
    if group is None:
        raise Http404("No such group.")
    services.delete_group(group=group, actor=_actor(request))
    messages.success(request, f"Group {group.name} was deleted.")
    return redirect("fleet:groups", org=request.org.slug)


# --- hardware targets -----------------------------------------------------------------------------


@org_view()
def target_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.membership.can(Action.MANAGE_FLEET)
    form = TargetForm(request.POST or None) if can_manage else None
    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.create_target(
                organization=request.org, actor=_actor(request), **form.service_values()
            ),
            success_message=lambda target: f"Target {target.name} was added.",
            redirect_to=lambda target: _target_url(request, target),
            render_invalid=lambda status: _target_list_page(request, form, status),
        )
    return _target_list_page(request, form)


def _target_list_page(request, form, status: int = 200) -> HttpResponse:
    targets = selectors.targets_for_org(org=request.org)
    context = _fleet_context(request, "targets", targets=targets, form=form)
    return render(request, "fleet/target_list.html", context, status=status)


@org_view()
def target_detail(request: HttpRequest, target_id: int) -> HttpResponse:
    target = selectors.target_for_org(org=request.org, pk=target_id)
    if target is None:
        raise Http404("No such hardware target.")
    can_edit = request.membership.can(Action.MANAGE_FLEET) and not target.is_builtin
    form = None
    if can_edit:
        mb = 1024 * 1024
        initial = {
            "name": target.name,
            "runtime": target.runtime,
            "execution_provider": target.execution_provider,
            "static_shapes_only": target.static_shapes_only,
            "quantized_only": target.quantized_only,
            "max_model_mb": target.max_model_bytes / mb if target.max_model_bytes else None,
            "memory_budget_mb": target.memory_budget_bytes / mb
            if target.memory_budget_bytes
            else None,
            "typical_power_watts": target.typical_power_watts,
            "operators": TargetForm.operators_text(target.operators),
            "notes": target.notes,
        }
        form = TargetForm(request.POST or None, initial=initial)

    def page(status: int = 200) -> HttpResponse:
        q = request.GET.get("op", "").strip().lower()
        operators = [
            op
            for op in target.operators
            if not q or q in op["op_type"].lower() or q in op["domain"].lower()
        ]
        context = _fleet_context(
            request, "targets", target=target, form=form, operators=operators, op_query=q
        )
        return render_page(
            request,
            "fleet/target_detail.html",
            context,
            fragment="fleet/partials/operator_table.html",
            status=status,
        )

    if request.method == "POST":  # built-in targets have no form: nothing to change
        return handle_form_post(
            request,
            action=Action.MANAGE_FLEET,
            form=form,
            perform=lambda: services.update_target(
                target=target, actor=_actor(request), **form.service_values()
            ),
            success_message="Target updated.",
            redirect_to=lambda _: _target_url(request, target),
            render_invalid=page,
        )
    return page()


@require_POST
@org_view(Action.MANAGE_FLEET)
def target_clone(request: HttpRequest, target_id: int) -> HttpResponse:
    source = selectors.target_for_org(org=request.org, pk=target_id)
    if source is None:
        raise Http404("No such hardware target.")
    try:
        target = services.clone_target(
            organization=request.org,
            source=source,
            actor=_actor(request),
            name=request.POST.get("name", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("fleet:target", org=request.org.slug, target_id=source.pk)
    messages.success(request, f"{target.name} was created; adjust it below.")
    return redirect("fleet:target", org=request.org.slug, target_id=target.pk)
