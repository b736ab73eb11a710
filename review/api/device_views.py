"""``POST /api/v1/device/evidence``: a low-confidence or audit sample, checked, encrypted, held."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet.api.device_authentication import DeviceSignatureAuthentication, IsDevice
from opshero.api.errors import error_body

from .. import services


class EvidenceReceiptSerializer(serializers.Serializer):
    evidence = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["pending", "linked", "reviewed", "unmatched", "deleted"]
    )


class EvidenceUploadView(APIView):
    """Upload an evidence sample (docs/device-api.md, "Evidence"; protocol/evidence.py).

    The body is read as bytes (the signature covers exactly them), so no DRF parser runs.
    """

    authentication_classes = [DeviceSignatureAuthentication]
    permission_classes = [IsDevice]
    parser_classes: list = []

    @extend_schema(
        operation_id="device_evidence_create",
        parameters=[
            OpenApiParameter("epoch", str, required=True, description="The event's epoch."),
            OpenApiParameter("sequence", int, required=True, description="The event's sequence."),
            OpenApiParameter(
                "reason",
                str,
                required=True,
                enum=["low_confidence", "audit"],
                description="Why the gateway sampled it.",
            ),
        ],
        request={
            "image/png": OpenApiTypes.BINARY,
            "image/jpeg": OpenApiTypes.BINARY,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={201: EvidenceReceiptSerializer, 200: EvidenceReceiptSerializer},
    )
    def post(self, request):
        raw = request._request
        try:
            receipt = services.receive_evidence(
                device=request.auth,
                body=raw.body,
                content_type=raw.headers.get("Content-Type", ""),
                query=raw.META.get("QUERY_STRING", ""),
            )
        except services.EvidenceRefusedError as exc:
            if exc.retry_after is None:
                raise
            response = Response(
                error_body(exc.code, exc.message),
                status=exc.status,
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
        return Response(receipt.as_json(), status=201 if receipt.created else 200)
