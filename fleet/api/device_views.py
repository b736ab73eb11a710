"""The device API: what an enrolled gateway may call, signed with its own key.

Everything here is about the calling device only ("me"): there is no way to name another
device, and neither user sessions nor user tokens are accepted.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from opshero.actors import client_ip
from opshero.throttling import ScopedClientThrottle

from .. import device_payload, services
from .device_authentication import DeviceSignatureAuthentication, IsDevice
from .serializers import (
    DeviceSelfSerializer,
    EnrollRequestSerializer,
    EnrollResponseSerializer,
    RotateKeyRequestSerializer,
    StatusRequestSerializer,
)


class EnrollView(APIView):
    """Exchange a one-time enrollment token and the gateway's own public key for a device id."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "enroll"

    def get_authenticate_header(self, request):
        return 'OpsHero-Enrollment-Token realm="device-api"'

    @extend_schema(
        request=EnrollRequestSerializer,
        responses={201: EnrollResponseSerializer},
        examples=[
            OpenApiExample(
                "gateway",
                request_only=True,
                value={
                    "token": "ohe_…",
                    "public_key": "8m3V0m4yC7e6n6o2b5o5YtQdJm7y1y9bX0o3wQ2u1nE=",
                    "serial": "GW-DOCK-0042",
                    "name": "dock-7-gateway",
                    "agent_version": "0.1.0",
                    "runtime_version": "onnxruntime 1.32.0",
                    "hardware": {"cpu": "x86_64", "cores": 4, "ram_mb": 8192},
                },
            )
        ],
    )
    def post(self, request):
        body = EnrollRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        device = services.enroll_device(
            token=data["token"],
            public_key=data["public_key"],
            facts=services.EnrollmentFacts(
                serial=data["serial"],
                name=data["name"],
                agent_version=data["agent_version"],
                runtime_version=data["runtime_version"],
                hardware=data["hardware"],
            ),
            ip=client_ip(request),
        )
        payload = DeviceSelfSerializer(device).data
        payload.update(device_payload.extra_payload(device))
        return Response(payload, status=status.HTTP_201_CREATED)


class DeviceAPIView(APIView):
    authentication_classes = [DeviceSignatureAuthentication]
    permission_classes = [IsDevice]


class MeView(DeviceAPIView):
    """The calling device's own record and the signing keys it must trust."""

    @extend_schema(responses=EnrollResponseSerializer)
    def get(self, request):
        payload = DeviceSelfSerializer(request.auth).data
        payload.update(device_payload.extra_payload(request.auth))
        return Response(payload)


class StatusView(DeviceAPIView):
    """Report agent/runtime versions and the model version running; also a check-in."""

    @extend_schema(request=StatusRequestSerializer, responses=DeviceSelfSerializer)
    def post(self, request):
        body = StatusRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        device = services.report_device_status(device=request.auth, **body.validated_data)
        return Response(DeviceSelfSerializer(device).data)


class RotateKeyView(DeviceAPIView):
    """Replace this device's key: signed with the current key, with proof of the new one."""

    @extend_schema(request=RotateKeyRequestSerializer, responses={200: None})
    def post(self, request):
        body = RotateKeyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        credential = services.rotate_device_key(
            device=request.auth, ip=client_ip(request), **body.validated_data
        )
        return Response({"key_fingerprint": credential.fingerprint})
