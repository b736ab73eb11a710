"""Evidence samples, their events and signed upload requests for the review tests."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from django.utils import timezone

from fleet import services as fleet_services
from opshero.actors import Actor
from protocol import device_auth
from protocol import evidence as wire
from telemetry import services as telemetry_services
from tests.telemetry.builders import EPOCH, MODEL, batch_body, inference

EVIDENCE = wire.EVIDENCE_PATH
CLASSES = ["dent", "scratch", "crush", "ok"]


def png_bytes(
    width: int = 8, height: int = 8, *, exif: bytes | None = None, size: int = 0
) -> bytes:
    """A real PNG (Pillow); ``size`` pads it with a noise image to roughly that many bytes."""
    import os

    from PIL import Image

    if size:
        side = int((size / 3) ** 0.5) + 1
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    else:
        image = Image.new("L", (width, height), color=128)
    out = io.BytesIO()
    if exif is not None:
        info = Image.Exif()
        info[0x010F] = exif.decode()  # Make
        image.save(out, format="PNG", exif=info)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(*, gps: bool = False) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (16, 16), color=(200, 10, 10))
    info = Image.Exif()
    info[0x010F] = "DockCam 3000"  # Make
    info[0x0131] = "firmware serial SN-0042"  # Software
    if gps:
        info[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=info)
    return out.getvalue()


def json_sample(**extra) -> bytes:
    return json.dumps({"inputs": {"input": [[0.1, 0.2, 0.3]]}, **extra}).encode()


def post_evidence(
    client,
    device,
    key,
    body: bytes,
    *,
    epoch: str = EPOCH,
    sequence: int = 1,
    reason: str = "low_confidence",
    content_type: str = "application/json",
    query: str | None = None,
):
    """POST a sample signed over the exact path, query and bytes sent."""
    if query is None:
        query = wire.evidence_query(wire.EvidenceRef(epoch=epoch, sequence=sequence, reason=reason))
    signature = device_auth.sign_request(
        private_key=key,
        device_id=str(device.uid),
        method="POST",
        path=EVIDENCE,
        query=query,
        body=body,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signature.items()}
    return client.generic("POST", f"{EVIDENCE}?{query}", body, content_type=content_type, **extra)


def store_events(device, events, *, epoch: str = EPOCH) -> None:
    """Land and ingest a batch at once (no worker)."""
    receipt = telemetry_services.land_batch(
        device=device,
        body=batch_body(events, epoch=epoch),
        content_type="application/json",
        enqueue=False,
    )
    assert receipt.batch_id, receipt
    telemetry_services.ingest_landed_batch(batch_id=receipt.batch_id)


def low_confidence(seq: int, *, predicted: str = "dent", confidence: float = 0.41, **fields):
    return inference(seq, predicted_class=predicted, confidence=confidence, **fields)


def open_evidence_policy(site, **values) -> None:
    """A site policy that takes evidence (images too) with a generous cap."""
    values = {"evidence_daily_cap": 100, "image_evidence": True, **values}
    fleet_services.set_operating_policy(
        organization=site.organization, actor=Actor.system("tests"), site=site, **values
    )


def registered_model(org, *, classes=CLASSES):
    """A model version with MODEL's artifact digest and a labelled I/O contract."""
    from modelregistry.models import MlModel, ModelVersion

    model = MlModel.objects.create(organization=org, name=MODEL.name)
    return ModelVersion.objects.create(
        model=model,
        version=MODEL.version,
        artifact="artifacts/parcel-damage-v3.onnx",
        file_name="parcel-damage-v3.onnx",
        sha256=MODEL.sha256,
        size_bytes=1024,
        io_contract={"labels": list(classes)},
    )


def recent(minutes: int = 10):
    return timezone.now() - timedelta(minutes=minutes)
