"""Keep /api/ answers in the JSON error shape even when Django, not DRF, answers."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from .api.errors import API_PREFIX, body_refusal, error_response

logger = logging.getLogger(__name__)


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not request.path.startswith(("/api/docs", "/api/redoc", "/api/schema"))
        ):
            # Django's own answers (CSRF failure, oversized body, bad host, ...) are HTML.
            converted = error_response(response.status_code, _reason(response))
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    converted[header] = response[header]
            return converted
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not request.path.startswith(API_PREFIX):
            return None
        refused = body_refusal(exception)
        if refused is not None:
            return JsonResponse(refused[1], status=refused[0])
        if isinstance(exception, Http404):
            return error_response(404, "Not found.")
        if isinstance(exception, PermissionDenied):
            return error_response(403, "You do not have permission to perform this action.")
        logger.exception("Unhandled error on %s", request.path, exc_info=exception)
        return error_response(500, "The server failed to handle this request.")


def _reason(response: HttpResponse) -> str:
    return getattr(response, "reason_phrase", "") or "Request failed."
