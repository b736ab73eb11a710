"""An evidence sample: what a gateway uploads for a low-confidence or audit case.

No Django here: the server's evidence endpoint and the gateway agent both import this module.

Wire format
-----------
::

    POST /api/v1/device/evidence?epoch=<epoch>&sequence=<n>&reason=low_confidence
    Content-Type: image/png            (or image/jpeg, or application/json)
    <the sample's bytes>

The request is signed like every device request (the query string is covered by the
signature). ``epoch`` and ``sequence`` name the inference event the sample belongs to, exactly
as the telemetry batch numbered it; the event may not have reached the server yet (the sample
is then held as *pending* and linked when the event is stored; a sample whose event has not
arrived within :data:`LINK_WINDOW_HOURS` is refused and deleted). ``reason`` is
``low_confidence`` (the confidence was under the site's review threshold) or ``audit`` (a
random share of all cases, so that the confident ones are checked too).

The body is the sample itself, never executed or rendered by the server: an image is checked
by its magic bytes (and decoded by the server before it is accepted), a JSON sample must be
one object. Limits: :data:`MAX_IMAGE_BYTES` for an image, :data:`MAX_JSON_BYTES` for JSON.

Answers (errors have the API's shape ``{"error": {"code", "message"}}``):

=============================  ======  ====================================================
(stored)                       201     ``{"evidence": <uuid>, "status": "linked"|"pending"}``
(the same sample again)        200     the same answer: a retry after a lost answer is safe
``invalid_reference``          400     ``epoch``, ``sequence`` or ``reason`` missing or invalid
``evidence_disabled``          403     the site's policy sends no evidence (cap 0)
``image_evidence_disabled``    403     the site's policy allows JSON evidence only
``event_not_found``            404     the epoch is another device's, or the event is not an
                                       inference
``evidence_conflict``          409     a different sample is already stored for this event
``too_large``                  413     over the type's size limit
``unsupported_media_type``     415     a Content-Type other than the three above
``content_mismatch``           422     the bytes are not what the Content-Type says
``invalid_image``              422     the image does not decode, or is too large in pixels
``invalid_json``               422     not UTF-8 JSON, not an object, or nested too deep
``evidence_cap``               429     the device's daily cap is used up (``Retry-After``)
=============================  ======  ====================================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlencode

__all__ = [
    "ALLOWED_MEDIA_TYPES",
    "EVIDENCE_PATH",
    "LINK_WINDOW_HOURS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "REASONS",
    "EvidenceRef",
    "EvidenceRefused",
    "check_json_sample",
    "evidence_query",
    "parse_reference",
    "sniff_media_type",
]

EVIDENCE_PATH: Final = "/api/v1/device/evidence"
IMAGE_PNG: Final = "image/png"
IMAGE_JPEG: Final = "image/jpeg"
JSON: Final = "application/json"
ALLOWED_MEDIA_TYPES: Final = (IMAGE_PNG, IMAGE_JPEG, JSON)
MAX_IMAGE_BYTES: Final = 1024 * 1024
MAX_JSON_BYTES: Final = 64 * 1024
MAX_JSON_DEPTH: Final = 8
# 4096 x 4096: far more than any evidence crop needs, far less than a decompression bomb.
MAX_IMAGE_PIXELS: Final = 4096 * 4096
LINK_WINDOW_HOURS: Final = 24
LOW_CONFIDENCE: Final = "low_confidence"
AUDIT: Final = "audit"
REASONS: Final = (LOW_CONFIDENCE, AUDIT)
MAX_SEQUENCE: Final = 2**63 - 1

_EPOCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{7,63}")
# ASCII digits only (str.isdigit also takes "²"), at most 19 of them.
_SEQUENCE = re.compile(r"[0-9]{1,19}")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


class EvidenceRefused(Exception):
    """A sample refused as a whole: ``code`` and ``status`` as in the module's table."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass(frozen=True)
class EvidenceRef:
    """The inference event a sample belongs to, and why it was sent."""

    epoch: str
    sequence: int
    reason: str


def evidence_query(ref: EvidenceRef) -> str:
    """The query string a gateway signs and sends (parameters in a fixed order)."""
    return urlencode({"epoch": ref.epoch, "sequence": str(ref.sequence), "reason": ref.reason})


def parse_reference(query: str) -> EvidenceRef:
    """The reference from a request's query string, or ``EvidenceRefused`` (400)."""
    values = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(values) - {"epoch", "sequence", "reason"})
    if unknown:
        raise EvidenceRefused(
            "invalid_reference", 400, f"Unknown query parameter(s): {', '.join(unknown)}."
        )

    def one(name: str) -> str:
        got = values.get(name)
        if not got or got[0] == "":
            raise EvidenceRefused("invalid_reference", 400, f"Query parameter {name} is required.")
        if len(got) > 1:
            raise EvidenceRefused("invalid_reference", 400, f"Query parameter {name} is repeated.")
        return got[0]

    epoch = one("epoch")
    if not _EPOCH.fullmatch(epoch):
        raise EvidenceRefused(
            "invalid_reference",
            400,
            "epoch must be 8 to 64 characters of A-Z a-z 0-9 _ -, as in the telemetry batch.",
        )
    raw_sequence = one("sequence")
    if not _SEQUENCE.fullmatch(raw_sequence) or int(raw_sequence) > MAX_SEQUENCE:
        raise EvidenceRefused(
            "invalid_reference", 400, "sequence must be an integer in [0, 2**63 - 1]."
        )
    reason = one("reason")
    if reason not in REASONS:
        raise EvidenceRefused(
            "invalid_reference", 400, f"reason must be one of: {', '.join(REASONS)}."
        )
    return EvidenceRef(epoch=epoch, sequence=int(raw_sequence), reason=reason)


def declared_media_type(content_type: str) -> str:
    """The media type of a Content-Type header (parameters dropped), or ``EvidenceRefused``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in ALLOWED_MEDIA_TYPES:
        raise EvidenceRefused(
            "unsupported_media_type",
            415,
            f"Content-Type must be one of: {', '.join(ALLOWED_MEDIA_TYPES)}"
            + (f" (got {media})." if media else " (none sent)."),
        )
    return media


def sniff_media_type(body: bytes) -> str | None:
    """What the bytes are, by their first bytes: an image type, JSON, or None."""
    if body.startswith(_PNG_MAGIC):
        return IMAGE_PNG
    if body.startswith(_JPEG_MAGIC):
        return IMAGE_JPEG
    if body.lstrip(b" \t\r\n").startswith(b"{"):
        return JSON
    return None


def check_size(media: str, size: int) -> None:
    limit = MAX_JSON_BYTES if media == JSON else MAX_IMAGE_BYTES
    if size > limit:
        raise EvidenceRefused(
            "too_large", 413, f"A {media} sample may be at most {limit} bytes (got {size})."
        )
    if size == 0:
        raise EvidenceRefused("content_mismatch", 422, "The sample is empty.")


def check_content(media: str, body: bytes) -> None:
    """Refuse bytes that are not what the Content-Type says (images are decoded elsewhere)."""
    sniffed = sniff_media_type(body)
    if sniffed != media:
        raise EvidenceRefused(
            "content_mismatch",
            422,
            f"The body is {'not a known sample type' if sniffed is None else sniffed}, "
            f"not the {media} its Content-Type says.",
        )
    if media == JSON:
        check_json_sample(body)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def check_json_sample(body: bytes) -> dict:
    """The JSON sample as an object, or ``EvidenceRefused`` (422 ``invalid_json``)."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EvidenceRefused("invalid_json", 422, f"The sample is not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise EvidenceRefused("invalid_json", 422, "A JSON sample must be one object.")
    if _depth(value) > MAX_JSON_DEPTH:
        raise EvidenceRefused(
            "invalid_json", 422, f"A JSON sample may nest at most {MAX_JSON_DEPTH} levels."
        )
    return value


def check_sample(*, content_type: str, body: bytes) -> str:
    """The sample's media type once its Content-Type, size and bytes agree, or a refusal.

    Images still have to decode (the server does that with its image library).
    """
    media = declared_media_type(content_type)
    check_size(media, len(body))
    check_content(media, body)
    return media
