"""OpenAPI generation: OpsHero's authentication schemes and the error answers of every operation.

drf-spectacular documents only the success answer a view declares. The errors below are added
to every operation they can really come from, all with the one error shape of
``opshero.api.errors`` (the ``Error`` component), so a client generated from the schema knows
what a 401 or a 422 looks like. A view that declares one of these codes itself keeps its own.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    "400": "Malformed request: unparseable body, wrong types, missing fields (named in fields).",
    "401": "Missing or wrong credentials.",
    "403": "Your role does not allow this (or, for a session, the CSRF check failed).",
    "404": "No such object in this organisation (or an organisation you do not belong to).",
    "409": "The change contradicts the current state (duplicate, wrong state).",
    "413": "The request body is larger than this endpoint accepts.",
    "415": "The body's Content-Type is not one this endpoint accepts.",
    "422": "Well-formed, but a value is not acceptable (fields names it).",
    "429": "Too many requests; the Retry-After header says when to try again.",
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "opshero.api.authentication.ApiTokenAuthentication"
    name = "userToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "Personal token from POST /api/v1/auth/token/ or the API tokens page "
                "(Authorization: Bearer ohu_...)."
            ),
        }


class OpsHeroAutoSchema(AutoSchema):
    """AutoSchema plus the error answers an operation can give (see ``error_codes``)."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        from .serializers import ErrorSerializer  # serializers import models: not at load time

        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation.setdefault("responses", {})
        for code in self.error_codes(operation):
            responses.setdefault(
                code,
                {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": error}},
                },
            )
        return operation

    def error_codes(self, operation: dict) -> list[str]:
        """The error statuses this operation really answers with.

        - 400: any body or query parameter can be malformed; 413/415 for any request body.
        - 401: every operation takes credentials (user token/session, device signature, or the
          username/password or enrollment token in the body of the two anonymous ones).
        - 403: role checks on the user API; the device API refuses user credentials.
        - 404: a path parameter names an object, or a page number is past the end.
        - 409/422: writes go through services, which raise Conflict and InvalidInput.
        - 429: views with a throttle (token exchange, enrollment) and the login lockout.
        """
        params = operation.get("parameters", [])
        has_body = "requestBody" in operation
        has_query = any(p.get("in") == "query" for p in params)
        has_path = any(p.get("in") == "path" for p in params)
        anonymous = all(
            isinstance(p, AllowAny) or p is AllowAny for p in self.view.get_permissions()
        )
        codes = ["401"]
        if has_body or has_query:
            codes.append("400")
        if not anonymous:
            codes.append("403")
        if has_path or self._is_list_view():
            codes.append("404")
        if self.method in WRITE_METHODS:
            codes += ["409", "422"]
        elif has_query:
            codes.append("422")
        if has_body:
            codes += ["413", "415"]
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return sorted(codes)
