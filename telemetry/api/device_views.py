"""``POST /api/v1/device/telemetry``: a gateway's batch, verified, judged and landed before 200."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet.api.device_authentication import DeviceSignatureAuthentication, IsDevice

from .. import services
from .serializers import LandingReceiptSerializer


class TelemetryIngestView(APIView):
    """Post a batch of inference and health events (docs/device-api.md, "Telemetry").

    The body is read as bytes (the signature covers exactly them), so no DRF parser runs.
    """

    authentication_classes = [DeviceSignatureAuthentication]
    permission_classes = [IsDevice]
    parser_classes: list = []

    @extend_schema(
        operation_id="device_telemetry_create",
        request={"application/json": OpenApiTypes.OBJECT},
        # 400 not a batch (malformed gzip or JSON), 413 too many events or the body inflates
        # too far, 415 not application/json or an unknown Content-Encoding: added with the
        # error shape by opshero.api.schema.
        responses={200: LandingReceiptSerializer},
        examples=[
            OpenApiExample(
                "two held, one refused",
                response_only=True,
                value={
                    "batch": "5b1f2c9e-8a4d-4f6b-9c3e-1d2a7b8c9e0f",
                    "epoch": "0f8c2a4e-6b1d-4c3e-9a7f-2d5e8b1c4a90",
                    "events": 3,
                    "accepted": 2,
                    "held": [[41, 42]],
                    "duplicates": [],
                    "rejected": [
                        {
                            "index": 2,
                            "sequence": 43,
                            "code": "out_of_range",
                            "reason": "Expected `float` >= 0.0 - at `$.latency_ms`",
                        }
                    ],
                },
            )
        ],
    )
    def post(self, request):
        raw = request._request
        receipt = services.land_batch(
            device=request.auth,
            body=raw.body,
            content_type=raw.headers.get("Content-Type", ""),
            content_encoding=raw.headers.get("Content-Encoding", ""),
        )
        return Response(receipt.as_json())
