"""Organisation-scoped fleet API: sites, devices, groups, hardware targets, enrollment tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FileUploadParser
from rest_framework.response import Response
from rest_framework.views import APIView

from opshero.actors import Actor
from opshero.api.parsers import ApiJSONParser, ApiMultiPartParser
from opshero.api.scoping import OrgScopedMixin
from opshero.errors import InvalidInput, TooLarge
from opshero.roles import Action

from .. import device_csv, selectors, services
from ..enrollment import gateway_command
from ..filters import DeviceFilterSet
from ..models import Device, DeviceGroup, OperatingPolicy, Site
from . import serializers as s


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _payload(serializer_class, data, **kwargs) -> dict:
    body = serializer_class(data=data, **kwargs)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


# --- sites ----------------------------------------------------------------------------------------


class SiteListView(OrgScopedMixin, generics.ListAPIView):
    """Sites of the organisation with device counts. POST registers a site."""

    serializer_class = s.SiteSerializer
    required_actions = {"POST": Action.MANAGE_FLEET}

    def get_queryset(self):
        return selectors.sites_for_org(org=self.org)

    @extend_schema(
        request=s.SiteSerializer,
        responses={201: s.SiteSerializer},
        examples=[
            OpenApiExample(
                "dock",
                request_only=True,
                value={
                    "name": "Rotterdam Dock 7",
                    "kind": "dock",
                    "region": "NL",
                    "time_zone": "Europe/Amsterdam",
                    "expected_connectivity": 0.93,
                    "maintenance_windows": [{"day": 6, "start": "02:00", "end": "05:00"}],
                    "tags": ["cold-chain"],
                },
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.SiteSerializer, request.data)
        site = services.create_site(organization=self.org, actor=_actor(request), **data)
        # Read back through the selector so the answer has device_count/online_count like GET.
        site = selectors.sites_for_org(org=self.org).get(pk=site.pk)
        return Response(s.SiteSerializer(site).data, status=status.HTTP_201_CREATED)


class SiteDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_FLEET, "DELETE": Action.MANAGE_FLEET}

    def _site(self, site_id: int) -> Site:
        site = selectors.sites_for_org(org=self.org).filter(pk=site_id).first()
        if site is None:
            raise NotFound("No such site.")
        return site

    @extend_schema(responses=s.SiteSerializer)
    def get(self, request, org: str, site_id: int):
        return Response(s.SiteSerializer(self._site(site_id)).data)

    @extend_schema(request=s.SiteSerializer, responses=s.SiteSerializer)
    def patch(self, request, org: str, site_id: int):
        data = _payload(s.SiteSerializer, request.data, partial=True)
        site = services.update_site(site=self._site(site_id), actor=_actor(request), **data)
        return Response(s.SiteSerializer(self._site(site.pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, site_id: int):
        services.delete_site(site=self._site(site_id), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- hardware targets -----------------------------------------------------------------------------


class TargetListView(OrgScopedMixin, generics.ListAPIView):
    """Built-in targets (read-only) and the organisation's own. POST adds one."""

    serializer_class = s.HardwareTargetSerializer
    required_actions = {"POST": Action.MANAGE_FLEET}

    def get_queryset(self):
        return selectors.targets_for_org(org=self.org)

    @extend_schema(
        request=s.HardwareTargetDetailSerializer, responses={201: s.HardwareTargetDetailSerializer}
    )
    def post(self, request, org: str):
        data = _payload(s.HardwareTargetDetailSerializer, request.data)
        target = services.create_target(organization=self.org, actor=_actor(request), **data)
        return Response(s.HardwareTargetDetailSerializer(target).data, status=201)


class TargetDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_FLEET}

    def _target(self, target_id: int):
        target = selectors.target_for_org(org=self.org, pk=target_id)
        if target is None:
            raise NotFound("No such hardware target.")
        return target

    @extend_schema(responses=s.HardwareTargetDetailSerializer)
    def get(self, request, org: str, target_id: int):
        return Response(s.HardwareTargetDetailSerializer(self._target(target_id)).data)

    @extend_schema(
        request=s.HardwareTargetDetailSerializer, responses=s.HardwareTargetDetailSerializer
    )
    def patch(self, request, org: str, target_id: int):
        data = _payload(s.HardwareTargetDetailSerializer, request.data, partial=True)
        target = services.update_target(
            target=self._target(target_id), actor=_actor(request), **data
        )
        return Response(s.HardwareTargetDetailSerializer(target).data)


class TargetCloneView(TargetDetailView):
    required_actions = {"POST": Action.MANAGE_FLEET}
    http_method_names = ["post", "options"]  # an action: not the target's GET/PATCH again

    @extend_schema(
        request=s.CloneTargetSerializer, responses={201: s.HardwareTargetDetailSerializer}
    )
    def post(self, request, org: str, target_id: int):
        data = _payload(s.CloneTargetSerializer, request.data)
        target = services.clone_target(
            organization=self.org, source=self._target(target_id), actor=_actor(request), **data
        )
        return Response(s.HardwareTargetDetailSerializer(target).data, status=201)


# --- devices --------------------------------------------------------------------------------------


class DeviceListView(OrgScopedMixin, generics.ListAPIView):
    """Devices with filters, search and ordering. POST pre-registers a device."""

    serializer_class = s.DeviceSerializer
    required_actions = {"POST": Action.MANAGE_FLEET}
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeviceFilterSet

    def get_queryset(self):
        if self.is_schema_generation:
            return Device.objects.none()
        return selectors.devices_for_org(org=self.org)

    @extend_schema(request=s.DeviceSerializer, responses={201: s.DeviceSerializer})
    def post(self, request, org: str):
        data = _payload(
            s.DeviceSerializer,
            request.data,
            org=self.org,
            targets=selectors.targets_for_org(org=self.org),
        )
        device = services.register_device(organization=self.org, actor=_actor(request), **data)
        return Response(
            s.DeviceSerializer(selectors.device_for_org(org=self.org, pk=device.pk)).data,
            status=201,
        )


class DeviceDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_FLEET, "POST": Action.REVOKE_DEVICES}

    def _device(self, device_id: int) -> Device:
        device = selectors.device_for_org(org=self.org, pk=device_id)
        if device is None:
            raise NotFound("No such device.")
        return device

    @extend_schema(responses=s.DeviceSerializer)
    def get(self, request, org: str, device_id: int):
        return Response(s.DeviceSerializer(self._device(device_id)).data)

    @extend_schema(request=s.DeviceSerializer, responses=s.DeviceSerializer)
    def patch(self, request, org: str, device_id: int):
        data = _payload(
            s.DeviceSerializer,
            request.data,
            partial=True,
            org=self.org,
            targets=selectors.targets_for_org(org=self.org),
        )
        services.update_device(device=self._device(device_id), actor=_actor(request), **data)
        return Response(s.DeviceSerializer(self._device(device_id)).data)


class DeviceRevokeView(DeviceDetailView):
    """Revoke the device's key; its next request is refused. Re-enroll with a new token."""

    http_method_names = ["post", "options"]  # an action: not the device's GET/PATCH again

    @extend_schema(request=s.ReasonSerializer, responses=s.DeviceSerializer)
    def post(self, request, org: str, device_id: int):
        data = _payload(s.ReasonSerializer, request.data)
        services.revoke_device(device=self._device(device_id), actor=_actor(request), **data)
        return Response(s.DeviceSerializer(self._device(device_id)).data)


class DeviceRetireView(DeviceDetailView):
    """Retire the device for good: keys revoked, no longer targeted by rollouts."""

    http_method_names = ["post", "options"]  # an action: not the device's GET/PATCH again

    @extend_schema(request=s.ReasonSerializer, responses=s.DeviceSerializer)
    def post(self, request, org: str, device_id: int):
        data = _payload(s.ReasonSerializer, request.data)
        services.retire_device(device=self._device(device_id), actor=_actor(request), **data)
        return Response(s.DeviceSerializer(self._device(device_id)).data)


class DeviceImportView(OrgScopedMixin, APIView):
    """Import devices from CSV (all or nothing). Send text/csv, or multipart with a 'file'."""

    required_actions = {"POST": Action.MANAGE_FLEET}
    parser_classes = [ApiMultiPartParser, FileUploadParser]

    @extend_schema(
        request={"text/csv": OpenApiTypes.BINARY, "multipart/form-data": OpenApiTypes.BINARY},
        responses={201: s.ImportResultSerializer},
        description="Columns: " + ", ".join(device_csv.COLUMNS),
    )
    def post(self, request, org: str):
        upload = request.data.get("file")
        if upload is None:
            raise InvalidInput(
                "Send the CSV as the body or as a 'file' field.", fields={"file": ["Required."]}
            )
        if upload.size > settings.FLEET_CSV_MAX_BYTES:  # refuse before reading it into memory
            limit = settings.FLEET_CSV_MAX_BYTES
            raise TooLarge(
                f"The file is {upload.size:,} bytes; the limit is {limit:,}.",
                fields={"file": ["Too large; split it into several files."]},
            )
        data = upload.read()
        created = device_csv.import_devices_csv(
            organization=self.org, data=data, actor=_actor(request)
        )
        return Response(
            {"created": len(created), "serials": [d.serial for d in created]}, status=201
        )


class DeviceExportView(OrgScopedMixin, generics.GenericAPIView):
    """All devices matching the filters, as CSV (the import format)."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = DeviceFilterSet
    pagination_class = None

    def get_queryset(self):
        if self.is_schema_generation:
            return Device.objects.none()
        return selectors.devices_for_org(org=self.org)

    @extend_schema(filters=True, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, org: str):
        devices = self.filter_queryset(self.get_queryset())
        response = HttpResponse(device_csv.export_devices_csv(devices), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{self.org.slug}-devices.csv"'
        return response


# --- groups ---------------------------------------------------------------------------------------


def _group_data(group) -> dict:
    data = s.DeviceGroupSerializer(group).data
    data["static_members"] = sorted(group.static_members.values_list("pk", flat=True))
    data["member_count"] = selectors.members_of(group).count()
    return data


class GroupListView(OrgScopedMixin, generics.ListAPIView):
    """Device groups. Rules: AND across keys, OR within a key; plus static members."""

    serializer_class = s.DeviceGroupSerializer
    required_actions = {"POST": Action.MANAGE_FLEET}

    def get_queryset(self):
        return selectors.groups_for_org(org=self.org)

    def list(self, request, *args, **kwargs):
        groups = selectors.with_member_counts(
            org=self.org, groups=self.paginate_queryset(self.get_queryset())
        )
        rows = []
        for group in groups:  # the shape of _group_data, from what was prefetched and counted
            row = s.DeviceGroupSerializer(group).data
            row["static_members"] = sorted(d.pk for d in group.static_members.all())
            rows.append(row)
        return self.get_paginated_response(rows)

    @extend_schema(
        request=s.DeviceGroupSerializer,
        responses={201: s.DeviceGroupSerializer},
        examples=[
            OpenApiExample(
                "docks on gateways",
                request_only=True,
                value={
                    "name": "Dock gateways",
                    "rules": {"site_kinds": ["dock"], "placements": ["near_edge"]},
                },
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.DeviceGroupSerializer, request.data)
        group = services.create_group(
            organization=self.org,
            actor=_actor(request),
            name=data["name"],
            description=data.get("description", ""),
            rules=data.get("rules"),
            static_members=data.get("static_member_ids"),
        )
        return Response(_group_data(group), status=201)


class GroupDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_FLEET, "DELETE": Action.MANAGE_FLEET}

    def _group(self, group_id: int):
        group = selectors.group_for_org(org=self.org, pk=group_id)
        if group is None:
            raise NotFound("No such group.")
        return group

    @extend_schema(responses=s.DeviceGroupSerializer)
    def get(self, request, org: str, group_id: int):
        return Response(_group_data(self._group(group_id)))

    @extend_schema(request=s.DeviceGroupSerializer, responses=s.DeviceGroupSerializer)
    def patch(self, request, org: str, group_id: int):
        data = _payload(s.DeviceGroupSerializer, request.data, partial=True)
        if "static_member_ids" in data:
            data["static_members"] = data.pop("static_member_ids")
        group = services.update_group(group=self._group(group_id), actor=_actor(request), **data)
        return Response(_group_data(group))

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, group_id: int):
        services.delete_group(group=self._group(group_id), actor=_actor(request))
        return Response(status=204)


class GroupMembersView(GroupDetailView, generics.GenericAPIView):
    """The devices currently in the group (static members and rule matches)."""

    serializer_class = s.DeviceSerializer
    http_method_names = ["get", "head", "options"]  # not the group's PATCH/DELETE again

    @extend_schema(responses=s.DeviceSerializer(many=True))
    def get(self, request, org: str, group_id: int):
        page = self.paginate_queryset(selectors.members_of(self._group(group_id)))
        return self.get_paginated_response(s.DeviceSerializer(page, many=True).data)


# --- enrollment tokens ----------------------------------------------------------------------------


class EnrollmentTokenListView(OrgScopedMixin, generics.ListAPIView):
    """Enrollment tokens (prefix and state only). POST creates one and returns it once."""

    serializer_class = s.EnrollmentTokenSerializer
    required_actions = {"GET": Action.ENROLL_DEVICES, "POST": Action.ENROLL_DEVICES}
    parser_classes = [ApiJSONParser]

    def get_queryset(self):
        return selectors.enrollment_tokens_for_org(org=self.org)

    @extend_schema(
        request=s.EnrollmentTokenCreateSerializer,
        responses={201: s.EnrollmentTokenCreatedSerializer},
        examples=[
            OpenApiExample(
                "gateway at a dock", request_only=True, value={"site": 1, "expires_in_hours": 24}
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.EnrollmentTokenCreateSerializer, request.data)
        site = selectors.site_for_org(org=self.org, pk=data["site"])
        if site is None:
            raise InvalidInput("Unknown site.", fields={"site": ["No such site."]})
        target = None
        if data["hardware_target"] is not None:
            target = selectors.target_for_org(org=self.org, pk=data["hardware_target"])
            if target is None:
                raise InvalidInput(
                    "Unknown target.", fields={"hardware_target": ["No such target."]}
                )
        device = None
        if data["device"] is not None:
            device = selectors.device_for_org(org=self.org, pk=data["device"])
            if device is None:
                raise InvalidInput("Unknown device.", fields={"device": ["No such device."]})
        record, token = services.create_enrollment_token(
            organization=self.org,
            site=site,
            actor=_actor(request),
            placement=data["placement"],
            hardware_target=target,
            device=device,
            expires_in=timedelta(hours=data["expires_in_hours"]),
            note=data["note"],
        )
        payload = s.EnrollmentTokenSerializer(record).data
        payload["token"] = token
        payload["command"] = gateway_command(
            server=request.build_absolute_uri("/").rstrip("/"),
            token=token,
            serial=device.serial if device else None,
        )
        return Response(payload, status=201)


# --- operating policy -----------------------------------------------------------------------------

_POLICY_EXAMPLE = OpenApiExample(
    "stricter review",
    request_only=True,
    value={"review_threshold": 0.75, "evidence_sampling_rate": 0.02, "telemetry_interval_s": 120},
)


def _updated(policy: OperatingPolicy | None) -> dict:
    if policy is None:
        return {"updated_at": None, "updated_by": None}
    by = policy.updated_by.get_username() if policy.updated_by_id else None
    return {"updated_at": policy.updated_at, "updated_by": by}


def _site_policy_data(org, site: Site) -> dict:
    effective = selectors.effective_site_policy(site=site)
    policy = selectors.operating_policy_for_site(org=org, site=site)
    return s.OperatingPolicySerializer(
        {
            "scope": "site",
            "site": site.pk,
            "group": None,
            "source": effective.source,
            "source_label": effective.source_label,
            "revision": effective.revision,
            "values": effective.values(),
            "etag_part": effective.etag_part,
            **_updated(policy),
            "revisions": selectors.policy_revisions(org=org, site=site),
        }
    ).data


def _group_policy_data(org, group: DeviceGroup) -> dict:
    policy = selectors.operating_policy_for_group(org=org, group=group)
    return s.OperatingPolicySerializer(
        {
            "scope": "group",
            "site": None,
            "group": group.pk,
            "source": "group" if policy else "none",
            "source_label": f"Lane override · {group.name}" if policy else "No override",
            "revision": policy.revision if policy else 0,
            "values": policy.values() if policy else None,
            "etag_part": None,
            **_updated(policy),
            "revisions": selectors.policy_revisions(org=org, group=group),
        }
    ).data


class SitePolicyView(OrgScopedMixin, APIView):
    """The site's operating policy: its own, or the defaults of its kind (a clinic's are the
    strictest). PUT sets the settings given (the others keep their value); each change is a
    new revision, audited."""

    required_actions = {"PUT": Action.MANAGE_FLEET}

    def _site(self, site_id: int) -> Site:
        site = selectors.site_for_org(org=self.org, pk=site_id)
        if site is None:
            raise NotFound("No such site.")
        return site

    @extend_schema(responses=s.OperatingPolicySerializer)
    def get(self, request, org: str, site_id: int):
        return Response(_site_policy_data(self.org, self._site(site_id)))

    @extend_schema(
        request=s.OperatingPolicyInputSerializer,
        responses=s.OperatingPolicySerializer,
        examples=[_POLICY_EXAMPLE],
    )
    def put(self, request, org: str, site_id: int):
        site = self._site(site_id)
        data = _payload(s.OperatingPolicyInputSerializer, request.data)
        services.set_operating_policy(
            organization=self.org, actor=_actor(request), site=site, **data
        )
        return Response(_site_policy_data(self.org, site))


class GroupPolicyView(OrgScopedMixin, APIView):
    """A device group's policy override (a lane): its devices run it instead of their
    sites' policies. PUT creates or changes it; DELETE removes it."""

    required_actions = {"PUT": Action.MANAGE_FLEET, "DELETE": Action.MANAGE_FLEET}

    def _group(self, group_id: int) -> DeviceGroup:
        group = selectors.group_for_org(org=self.org, pk=group_id)
        if group is None:
            raise NotFound("No such group.")
        return group

    @extend_schema(responses=s.OperatingPolicySerializer)
    def get(self, request, org: str, group_id: int):
        return Response(_group_policy_data(self.org, self._group(group_id)))

    @extend_schema(
        request=s.OperatingPolicyInputSerializer,
        responses=s.OperatingPolicySerializer,
        examples=[_POLICY_EXAMPLE],
    )
    def put(self, request, org: str, group_id: int):
        group = self._group(group_id)
        data = _payload(s.OperatingPolicyInputSerializer, request.data)
        services.set_operating_policy(
            organization=self.org, actor=_actor(request), group=group, **data
        )
        return Response(_group_policy_data(self.org, group))

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, group_id: int):
        group = self._group(group_id)
        policy = selectors.operating_policy_for_group(org=self.org, group=group)
        if policy is None:
            raise NotFound("This group has no policy override.")
        services.clear_operating_policy(policy=policy, actor=_actor(request))
        return Response(status=204)
