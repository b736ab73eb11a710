"""The one request-parsing layer of both APIs: the user API and the device API.

Every JSON body is parsed here before a view or a serializer sees it, and refused with a 400
naming the field when it holds something no field of ours can store or compute with:

- nesting deeper than ``MAX_JSON_DEPTH`` (Python's parser would otherwise recurse until
  ``RecursionError``);
- a number that is not finite (``1e999999`` parses as infinity; ``NaN``/``Infinity`` literals
  are not JSON) or an integer outside the signed 64-bit range the database stores;
- text holding NUL (``\\u0000``) or a lone UTF-16 surrogate, in a value or in a key: PostgreSQL
  stores neither (``text`` refuses NUL, ``jsonb`` refuses both), so they would surface as a
  ``DataError`` 500 long after the request was accepted.

Form and multipart text fields get the same text check. Bodies larger than Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` raise ``RequestDataTooBig`` when first read; the API's exception
handler and ``ApiErrorMiddleware`` answer that with a 413 in the API's error shape.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from opshero.errors import DomainError

MAX_JSON_DEPTH = 64
MAX_JSON_INTEGER = 2**63 - 1

# Request body limits per endpoint, in bytes, for the API reference and docs/device-api.md.
# JSON and form bodies are bounded by Django's DATA_UPLOAD_MAX_MEMORY_SIZE (its default,
# 2.5 MiB; settings does not change it). The two upload endpoints stream their file part to
# disk and bound it by their own setting (form fields next to the file still count toward the
# 2.5 MiB). Anything larger is answered 413 {"error": {"code": "payload_too_large", ...}}.
JSON_BODY_MAX_BYTES = 2_621_440
REQUEST_BODY_LIMITS: dict[str, dict[str, Any]] = {
    "POST /api/v1/device/enroll": {
        "bytes": JSON_BODY_MAX_BYTES,
        "setting": "DATA_UPLOAD_MAX_MEMORY_SIZE",
    },
    "POST /api/v1/device/status": {
        "bytes": JSON_BODY_MAX_BYTES,
        "setting": "DATA_UPLOAD_MAX_MEMORY_SIZE",
    },
    "POST /api/v1/device/rotate-key": {
        "bytes": JSON_BODY_MAX_BYTES,
        "setting": "DATA_UPLOAD_MAX_MEMORY_SIZE",
    },
    "POST /api/v1/auth/token/": {
        "bytes": JSON_BODY_MAX_BYTES,
        "setting": "DATA_UPLOAD_MAX_MEMORY_SIZE",
    },
    "every other JSON body under /api/v1/": {
        "bytes": JSON_BODY_MAX_BYTES,
        "setting": "DATA_UPLOAD_MAX_MEMORY_SIZE",
    },
    "POST /api/v1/orgs/{org}/devices/import/ (the CSV file)": {
        "bytes": 5 * 1024 * 1024,
        "setting": "FLEET_CSV_MAX_BYTES",
    },
    "POST /api/v1/orgs/{org}/models/{model}/versions/ (the uploaded artifact)": {
        "bytes": 500 * 1024 * 1024,
        "setting": "MODEL_UPLOAD_MAX_BYTES",
    },
}

# A JSON string escape can yield a lone surrogate (``"\ud800"``); a valid pair is combined
# into one code point by the decoder, so any surrogate left in a str is a lone one.
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


class UnacceptableBody(DomainError, ParseError):
    """The body parsed but holds a value no field can take (400, naming where it is).

    A DomainError for its answer (code and fields, see ``api_exception_handler``) and a DRF
    ParseError so that DRF treats it as one wherever the body is first read, e.g. during
    session authentication's CSRF check.
    """

    status = 400
    code = "invalid_body"


def _field(path: list[str]) -> str:
    return ".".join(path) if path else "non_field_errors"


def _text_problem(text: str) -> str | None:
    match = _UNSTORABLE_TEXT.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Text may not contain the NUL character (\\u0000)."
    return "Text may not contain a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff)."


def _refuse(path: list[str], reason: str, code: str) -> UnacceptableBody:
    field = _field(path)
    where = f" at {field}" if path else ""
    return UnacceptableBody(f"{reason.rstrip('.')}{where}.", code=code, fields={field: [reason]})


def check_json_value(
    data: Any, *, max_depth: int = MAX_JSON_DEPTH, path: list[str] | None = None
) -> None:
    """Refuse (UnacceptableBody) the first value of ``data`` that the API cannot accept.

    Walks iteratively, so a deep document cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, list[str], int]] = [(data, list(path or []), 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                raise _refuse(path, problem, "invalid_text")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _refuse(
                    path, "Numbers must be finite (this one overflows).", "invalid_number"
                )
        elif isinstance(value, int):
            if not -MAX_JSON_INTEGER - 1 <= value <= MAX_JSON_INTEGER:
                raise _refuse(
                    path, "Integers must fit in 64 bits (-2^63 .. 2^63-1).", "invalid_number"
                )
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise _refuse(
                    path, f"JSON may nest at most {max_depth} objects or arrays deep.", "too_deep"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    problem = _text_problem(key)
                    if problem:
                        raise _refuse(path, f"A key: {problem}", "invalid_text")
                    stack.append((item, [*path, key], depth + 1))
            else:
                for index, item in enumerate(value):
                    stack.append((item, [*path, str(index)], depth + 1))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json_text(text: str, *, field: str | None = None) -> Any:
    """``json.loads`` with this module's checks, for JSON held in a form field or a string.

    Raises ValueError when the text is not JSON, UnacceptableBody (naming ``field``) when it is
    JSON no field can take: too deep, a non-finite or over-64-bit number, NUL or a surrogate.
    """
    path = [field] if field else []
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _refuse(
            path, f"JSON may nest at most {MAX_JSON_DEPTH} objects or arrays deep.", "too_deep"
        ) from None
    check_json_value(data, path=path)
    return data


class ApiJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the depth, number and text checks of this module."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            return load_json_text(raw.decode(encoding))
        except UnacceptableBody:
            raise
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None


def _check_form(data, files=None) -> None:
    for key in data:
        problem = _text_problem(key)
        if problem:
            raise _refuse([], f"A field name: {problem}", "invalid_text")
        for value in data.getlist(key):
            if not isinstance(value, str):
                continue
            problem = _text_problem(value)
            if problem:
                raise _refuse([key], problem, "invalid_text")
            if value.lstrip()[:1] in ("[", "{"):
                # JSON sent as a form field (shape_buckets, io_contract) is parsed later by
                # the field: give it the JSON body's checks now. Not JSON: the field decides.
                with contextlib.suppress(ValueError):
                    load_json_text(value, field=key)
    for key, upload in (files or {}).items():
        problem = _text_problem(getattr(upload, "name", "") or "")
        if problem:
            raise _refuse([key], f"The file name: {problem}", "invalid_text")


class ApiFormParser(parsers.FormParser):
    """URL-encoded forms, with the text check applied to every field."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class ApiMultiPartParser(parsers.MultiPartParser):
    """Multipart forms, with the text check applied to every text field and file name."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data, result.files)
        return result
