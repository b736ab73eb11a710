"""Errors that services raise; the API and the HTML views turn them into answers.

Each carries a stable machine-readable ``code``, a sentence for people and, where one
input is at fault, ``fields`` mapping field names to reasons, and optionally ``details``:
structured data a client can offer back to the user. The HTTP status lives here
so that every entry point answers the same way.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}
        # Structured data a client can act on (e.g. suggested sizes for open axes).
        self.details = details or {}


class InvalidInput(DomainError):
    """The request is well-formed but a value is not acceptable (422)."""

    status = 422
    code = "invalid_input"


class Forbidden(DomainError):
    """The caller is known but its role does not allow this (403)."""

    status = 403
    code = "permission_denied"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The change contradicts the current state (409): duplicate, wrong state, stale version."""

    status = 409
    code = "conflict"


class Unauthenticated(DomainError):
    """Credentials are missing or wrong (401): bad enrollment token, bad device signature."""

    status = 401
    code = "not_authenticated"


class TooLarge(DomainError):
    status = 413
    code = "payload_too_large"
