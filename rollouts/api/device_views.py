"""The rollouts part of the device API: what the calling gateway should run, the artifacts it
may download, and its reports on its deployment actions (docs/device-api.md, "Desired state,
artifacts and deployment status").

Everything is about the calling device only (``request.auth``); an object that is not the
device's own is a 404, never a 403 that says it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from django.utils.http import parse_etags, quote_etag
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from fleet.api.device_authentication import DeviceSignatureAuthentication, IsDevice
from fleet.models import Device
from fleet.selectors import effective_policy
from modelregistry.assignment_services import live_signature_ids
from modelregistry.models import DeviceAssignment, ModelSignature, ModelVersion, SigningKey
from opshero import generations
from opshero.actors import Actor, client_ip
from opshero.api.errors import error_body
from opshero.errors import InvalidInput

from .. import services
from .serializers import (
    ActionStatusRequestSerializer,
    ActionStatusResponseSerializer,
    DesiredStateSerializer,
)

ARTIFACT_CHUNK = 64 * 1024
NO_LIVE_SIGNATURE = (
    "No live signature: it expired or its signing key was retired. Keep running the version "
    "installed until a new envelope arrives."
)


class DeviceAPIView(APIView):
    authentication_classes = [DeviceSignatureAuthentication]
    permission_classes = [IsDevice]


def artifact_url(version_id: int) -> str:
    return f"/api/v1/device/artifacts/{version_id}"


# --- desired state ------------------------------------------------------------------------------


@dataclass
class DesiredState:
    """What the desired answer is made of, read in a fixed number of queries; ``etag`` is
    known before any envelope is read."""

    device: Device
    assignments: list[DeviceAssignment]
    live: dict[int, tuple[int, int]]
    keys: list[tuple[str, str, str]]  # (key_id, status, public_pem)
    policy: object
    etag: str


def read_desired_state(device: Device) -> DesiredState:
    """Assignments (1 query), live signatures of every assigned version (1), the
    organisation's keys (1) and the effective policy (``effective_policies``: at most 4)."""
    now = timezone.now()
    assignments = list(
        DeviceAssignment.objects.filter(device=device)
        .select_related("model", "version", "previous_version")
        .only(
            "pk",
            "model_id",
            "version_id",
            "previous_version_id",
            "action_id",
            "purpose",
            "since",
            "updated_at",
            "model__name",
            "version__version",
            "version__sha256",
            "version__size_bytes",
            "version__artifact_kind",
            "version__entrypoint",
            "previous_version__version",
            "previous_version__sha256",
        )
        .order_by("model_id")
    )
    live = live_signature_ids({a.version_id for a in assignments}, now=now)
    keys = list(
        SigningKey.objects.filter(organization_id=device.organization_id)
        .order_by("pk")
        .values_list("key_id", "status", "public_pem")
    )
    policy = effective_policy(device=device)
    revision = [
        str(device.uid),
        [
            [
                a.pk,
                a.model_id,
                a.model.name,  # the only listed value that may change in place (a rename)
                a.version_id,
                a.previous_version_id,
                a.action_id,
                a.purpose,
                a.updated_at.isoformat(),
                live.get(a.version_id, (None,))[0],
            ]
            for a in assignments
        ],
        [[key_id, status] for key_id, status, _ in keys],
        # The answer carries the policy's revision: a re-created policy with the same values
        # is a new revision, and the ETag must say so.
        [policy.etag_part, policy.revision, policy.policy_id, policy.site_kind],
    ]
    digest = hashlib.sha256(json.dumps(revision, separators=(",", ":")).encode()).hexdigest()[:32]
    return DesiredState(
        device=device,
        assignments=assignments,
        live=live,
        keys=keys,
        policy=policy,
        etag=quote_etag(f"desired-{digest}"),
    )


def desired_payload(state: DesiredState) -> dict:
    """The full answer; reads the envelopes of the live signatures (one query)."""
    envelopes = dict(
        ModelSignature.objects.filter(pk__in=[pk for pk, _ in state.live.values()]).values_list(
            "pk", "envelope"
        )
    )
    models = []
    for a in state.assignments:
        version = a.version
        live = state.live.get(a.version_id)
        entry = {
            "model": a.model.name,
            "model_id": a.model_id,
            "version": version.version,
            "version_id": a.version_id,
            "sha256": version.sha256,
            "size": version.size_bytes,
            "artifact_kind": version.artifact_kind,
            "entrypoint": version.entrypoint,
            "release_counter": live[1] if live else None,
            "envelope": envelopes.get(live[0]) if live else None,
            "artifact_url": artifact_url(a.version_id),
            "purpose": a.purpose,
            "action_id": a.action_id,
            "since": a.since.isoformat(),
            "fallback": (
                {
                    "version": a.previous_version.version,
                    "sha256": a.previous_version.sha256,
                    "artifact_url": artifact_url(a.previous_version_id),
                }
                if a.previous_version_id
                else None
            ),
        }
        if live is None:
            entry["refused"] = NO_LIVE_SIGNATURE
        models.append(entry)
    policy = state.policy
    return {
        "device": str(state.device.uid),
        "models": models,
        "trusted_keys": [
            {"key_id": key_id, "public_pem": pem}
            for key_id, status, pem in state.keys
            if status == SigningKey.Status.ACTIVE
        ],
        "revoked_key_ids": [
            key_id for key_id, status, _ in state.keys if status == SigningKey.Status.RETIRED
        ],
        "policy": {
            **policy.values(),
            "source": policy.source,
            "revision": policy.revision,
            "site_kind": policy.site_kind,
        },
    }


def _matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison, as RFC 9110 asks for If-None-Match.
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    if "*" in tags:
        return True
    return etag in {tag.removeprefix("W/") for tag in tags}


class DesiredStateView(DeviceAPIView):
    """What this device should run: per assigned model the signed envelope, the artifact and
    the version to fall back to; the keys to trust and those revoked; the operating policy."""

    @extend_schema(
        operation_id="device_desired_retrieve",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The ETag of the last answer: 304 when nothing changed.",
            )
        ],
        responses={200: DesiredStateSerializer, 304: OpenApiResponse(description="Unchanged.")},
    )
    def get(self, request):
        device = request.auth
        if_none_match = request.headers.get("If-None-Match", "")
        generation = generations.current(device.organization_id)
        if if_none_match and generation is not None:
            # Nothing audited in the organisation since this device's last answer: the same
            # answer, without reading assignments, signatures, keys or the policy.
            known = _cached_etag(device.pk, generation)
            if known is not None and _matches(if_none_match, known):
                return _not_modified(known)
        state = read_desired_state(device)
        if generation is not None:
            _cache_etag(device.pk, generation, state.etag)
        if _matches(if_none_match, state.etag):
            return _not_modified(state.etag)
        return Response(
            desired_payload(state), headers={"ETag": state.etag, "Cache-Control": "no-cache"}
        )


# A cached ETag lives at most this long, so what no audit event announces (a signature
# expiring) reaches the device within it.
ETAG_CACHE_SECONDS = 60


def _etag_key(device_id: int) -> str:
    return f"desired-etag:{device_id}"


def _cached_etag(device_id: int, generation: int) -> str | None:
    try:
        entry = cache.get(_etag_key(device_id))
    except Exception:  # noqa: BLE001 - a cache outage costs a database read
        return None
    if isinstance(entry, list | tuple) and len(entry) == 2 and entry[0] == generation:
        return entry[1]
    return None


def _cache_etag(device_id: int, generation: int, etag: str) -> None:
    with contextlib.suppress(Exception):  # a cache outage: the next poll reads the database
        cache.set(_etag_key(device_id), (generation, etag), timeout=ETAG_CACHE_SECONDS)


def _not_modified(etag: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


# --- artifacts ----------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeError(Exception):
    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message


def parse_range(header: str, *, size: int) -> tuple[int, int] | None:
    """The one byte range ``header`` asks for, as (first, last) inclusive and clamped to the
    file; None for no Range header. Several ranges and unsatisfiable ones are 416, anything
    that is not ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` is 400."""
    header = header.strip()
    if not header:
        return None
    if header.startswith("bytes=") and "," in header:
        raise RangeError(
            416,
            "multiple_ranges",
            "Only a single byte range is served; ask for one range per request.",
        )
    match = _RANGE.match(header)
    if match is None or match.groups() == ("", ""):
        raise RangeError(
            400,
            "malformed_range",
            "The Range header must be bytes=<first>-<last>, bytes=<first>- or bytes=-<length>.",
        )
    first_text, last_text = match.groups()
    if not first_text:  # bytes=-n: the last n bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeError(
                416, "range_not_satisfiable", "An empty suffix range asks for nothing."
            )
        return max(size - length, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        raise RangeError(
            400, "malformed_range", f"The range ends ({last}) before it starts ({first})."
        )
    if first >= size:
        raise RangeError(
            416,
            "range_not_satisfiable",
            f"The range starts at byte {first}; the artifact has {size} bytes.",
        )
    return first, min(last, size - 1)


def _stream(file, *, start: int, length: int):
    try:
        file.seek(start)
        remaining = length
        while remaining > 0:
            chunk = file.read(min(ARTIFACT_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        file.close()


def assigned_version(device: Device, version_id: int) -> ModelVersion | None:
    """The version, when the device should run it or may fall back to it; None otherwise
    (one query)."""
    assigned = DeviceAssignment.objects.filter(device=device).filter(
        Q(version_id=OuterRef("pk")) | Q(previous_version_id=OuterRef("pk"))
    )
    return (
        ModelVersion.objects.filter(pk=version_id, model__organization_id=device.organization_id)
        .filter(Exists(assigned))
        .only("pk", "artifact", "file_name", "sha256", "size_bytes")
        .first()
    )


class ArtifactView(DeviceAPIView):
    """Download an artifact the device is assigned (or may fall back to), with HTTP ranges."""

    @extend_schema(
        operation_id="device_artifact_retrieve",
        parameters=[
            OpenApiParameter(
                "Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="One range: bytes=a-b, bytes=a- or bytes=-n (not signed).",
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, version_id: int):
        version = assigned_version(request.auth, version_id)
        if version is None:
            return Response(error_body("not_found", "No such artifact for this device."), 404)
        size = version.artifact.storage.size(version.artifact.name)
        etag = quote_etag(version.sha256)
        header = request.headers.get("Range", "")
        if_range = request.headers.get("If-Range", "").strip()
        if header and if_range and if_range != etag:
            header = ""  # the artifact changed under the client's partial copy: send it whole
        try:
            wanted = parse_range(header, size=size)
        except RangeError as exc:
            headers = {"Content-Range": f"bytes */{size}"} if exc.http_status == 416 else {}
            return Response(error_body(exc.code, exc.message), exc.http_status, headers=headers)
        first, last = wanted if wanted is not None else (0, size - 1)
        length = max(last - first + 1, 0)
        response = StreamingHttpResponse(
            _stream(version.artifact.open("rb"), start=first, length=length),
            status=206 if wanted is not None else 200,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(length)
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = etag
        response["Content-Disposition"] = _attachment(version.file_name)
        if wanted is not None:
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
        return response


def _attachment(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{escape_uri_path(file_name)}"


# --- deployment status --------------------------------------------------------------------------


class ActionStatusView(DeviceAPIView):
    """Report progress on one of this device's deployment actions (idempotent, forward only)."""

    @extend_schema(
        operation_id="device_deployment_status_create",
        request=ActionStatusRequestSerializer,
        responses={200: ActionStatusResponseSerializer},
    )
    def post(self, request, action_id: int):
        body = ActionStatusRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        oversized = body.oversized()
        if oversized:
            raise InvalidInput(
                f"Too long: {', '.join(sorted(oversized))}.", fields=oversized, code="too_long"
            )
        device = request.auth
        data = body.validated_data
        result = services.report_action_status(
            device=device,
            action_id=action_id,
            status=data["status"],
            actor=Actor.for_device(device.uid, f"device:{device.name}", ip=client_ip(request)),
            reason_code=data["reason_code"],
            reason=data["reason"],
            inferences_served=data["inferences_served"],
        )
        return Response(
            {
                "action": result.action.pk,
                "status": result.action.status,
                "changed": result.changed,
                "note": result.note,
            }
        )
