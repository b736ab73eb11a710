"""Platform API: tokens, the current user, organisations, members and the audit log."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import AuthenticationFailed, NotFound, Throttled
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from opshero import login_throttle, selectors, services
from opshero.actors import Actor, client_ip
from opshero.filters import AuditEventFilterSet
from opshero.models import ApiToken, AuditEvent
from opshero.roles import Action
from opshero.throttling import ScopedClientThrottle

from . import serializers as s
from .scoping import OrgScopedMixin


class TokenView(APIView):
    """Exchange a username and password for a personal API token (shown once)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "token"

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # wrong credentials are a 401, as on every other endpoint

    @extend_schema(
        request=s.TokenRequestSerializer,
        responses={201: s.TokenSerializer},
        examples=[
            OpenApiExample(
                "login", request_only=True, value={"username": "ada", "password": "..."}
            ),
            OpenApiExample(
                "token",
                response_only=True,
                status_codes=["201"],
                value={"token": "ohu_3q2v8Zk1c7Yd0rW9mX4bN6tLpQhJsAeF"},
            ),
        ],
    )
    def post(self, request):
        body = s.TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        username = body.validated_data["username"]
        ip = client_ip(request)
        if login_throttle.is_locked(username, ip):
            raise Throttled(detail="Too many failed attempts; wait and try again.")
        user = authenticate(
            request._request, username=username, password=body.validated_data["password"]
        )
        if user is None:
            login_throttle.register_failure(username, ip)
            raise AuthenticationFailed("Wrong username or password.")
        login_throttle.reset(username, ip)
        _, token = services.issue_api_token(
            user=user,
            name=request.headers.get("User-Agent", ""),
            actor=Actor.for_user(user, ip=ip),
        )
        return Response({"token": token}, status=status.HTTP_201_CREATED)


class TokenListView(generics.ListAPIView):
    """Your personal API tokens (prefixes only)."""

    serializer_class = s.ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)


class TokenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id: int):
        token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
        services.revoke_api_token(token=token, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The signed-in user and the organisations they belong to."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        return Response(s.MeSerializer(request.user).data)


class OrganizationListView(generics.ListAPIView):
    """Organisations you belong to, with your role in each."""

    serializer_class = s.MyMembershipSerializer

    def get_queryset(self):
        return selectors.memberships_for_user(user=self.request.user)


class OrganizationDetailView(OrgScopedMixin, APIView):
    @extend_schema(responses=s.OrganizationSerializer)
    def get(self, request, org: str):
        return Response(s.OrganizationSerializer(self.org).data)


class MemberListView(OrgScopedMixin, generics.ListAPIView):
    """Members of the organisation. Admins add existing users with POST."""

    serializer_class = s.MemberSerializer
    required_actions = {"POST": Action.MANAGE_MEMBERS}

    def get_queryset(self):
        return selectors.members_for_org(org=self.org)

    @extend_schema(request=s.MemberCreateSerializer, responses={201: s.MemberSerializer})
    def post(self, request, org: str):
        body = s.MemberCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.add_member(
            organization=self.org, actor=Actor.from_request(request), **body.validated_data
        )
        return Response(s.MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.MANAGE_MEMBERS, "DELETE": Action.MANAGE_MEMBERS}

    def _membership(self, membership_id: int):
        membership = selectors.members_for_org(org=self.org).filter(pk=membership_id).first()
        if membership is None:
            raise NotFound("No such member.")
        return membership

    @extend_schema(responses=s.MemberSerializer)
    def get(self, request, org: str, membership_id: int):
        return Response(s.MemberSerializer(self._membership(membership_id)).data)

    @extend_schema(request=s.MemberRoleSerializer, responses=s.MemberSerializer)
    def patch(self, request, org: str, membership_id: int):
        body = s.MemberRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.change_member_role(
            membership=self._membership(membership_id),
            role=body.validated_data["role"],
            actor=Actor.from_request(request),
        )
        return Response(s.MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, membership_id: int):
        services.remove_member(
            membership=self._membership(membership_id), actor=Actor.from_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventListView(OrgScopedMixin, generics.ListAPIView):
    """The organisation's audit log, newest first (approvers and admins)."""

    serializer_class = s.AuditEventSerializer
    required_actions = {"GET": Action.VIEW_AUDIT}
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        if self.is_schema_generation:
            return AuditEvent.objects.none()
        return selectors.audit_events_for_org(org=self.org)
