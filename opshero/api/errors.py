"""Every API error has one shape: {"error": {"code", "message", "fields"}}, plus "details"
when the error carries structured data to act on (suggested shape buckets).

``api_exception_handler`` covers errors raised inside DRF views (validation, auth,
throttling, parse errors, DomainError from services). ``ApiErrorMiddleware`` in
``opshero.middleware`` covers what happens outside DRF under /api/ (unknown URLs,
uncaught exceptions, Django's own 400/403/413 answers).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from opshero.errors import DomainError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

DEFAULT_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}


def error_body(
    code: str,
    message: str,
    fields: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict:
    """The error shape; ``details`` (structured data to act on) appears only when there is some."""
    body: dict[str, Any] = {"code": code, "message": message, "fields": fields or {}}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(status_code: int, message: str, code: str | None = None) -> JsonResponse:
    """A plain Django JSON error, for answers produced outside DRF."""
    return JsonResponse(
        error_body(code or DEFAULT_CODES.get(status_code, "error"), message), status=status_code
    )


def body_refusal(exc: Exception) -> tuple[int, dict] | None:
    """Django's refusals of a request body (raised when it is first read) as (status, body).

    Reading ``request.body``/``request.data``/``request.POST`` raises these, inside a DRF view
    (parsers, device signature checks) or outside one; both paths answer the same.
    """
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, error_body(
            "payload_too_large",
            f"The request body is larger than the {limit} bytes accepted for JSON and form data.",
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, error_body("too_many_fields", str(exc))
    return None


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field" or "field.sub" or "items.3.name": [reasons]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten_fields(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(
            error_body(exc.code, exc.message, exc.fields, exc.details), status=exc.status
        )
    refused = body_refusal(exc)
    if refused is not None:
        return Response(refused[1], status=refused[0])
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "The server failed to handle this request."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        non_field = fields.pop("non_field_errors", None)
        message = non_field[0] if non_field else "Some fields are invalid."
        if non_field:
            fields["non_field_errors"] = non_field
        response.data = error_body("invalid", message, fields)
        return response

    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) or DEFAULT_CODES.get(response.status_code, "error")
    message = str(detail) if detail is not None else str(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait:
        response.data = error_body(code, message, {"retry_after": [str(int(exc.wait))]})
    else:
        response.data = error_body(str(code), message)
    return response
