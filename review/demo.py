"""Demo evidence: low-confidence and audit cases of the demo week, some of them reviewed.

Each case is a small picture of a handwritten digit (drawn here with Pillow: the demo model reads
8x8 digits), uploaded through the real path (``services.receive_evidence``: checked, encrypted,
linked to its inference event), so the review queue, field accuracy and the deletion schedule
have something real to show at first sight. About one case in four shows a different digit from
the one the model predicted, so reviewers have corrections to make and accuracy is not 100 %.
"""

from __future__ import annotations

import io
import random

from django.utils import timezone

from fleet.models import Device, Site
from modelregistry.selectors import class_labels_by_artifact
from opshero.actors import Actor
from protocol import evidence as wire
from telemetry.models import DeviceEpoch, InferenceEvent
from telemetry.routers import telemetry_db

from . import services
from .models import EvidenceSample

CASES_PER_DEVICE = 8
REVIEWED_PER_DEVICE = 5


def digit_png(digit: str, *, seed: int) -> bytes:
    """A 64x64 grey picture of ``digit`` with a little noise (what a reviewer would look at)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed)  # noqa: S311 - a demo picture, not a secret
    image = Image.new("L", (64, 64), color=235)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    draw.text((18 + rng.randint(-3, 3), 6 + rng.randint(-3, 3)), digit[:1], fill=25, font=font)
    for _ in range(120):
        draw.point((rng.randrange(64), rng.randrange(64)), fill=rng.randint(120, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def seed(context: dict, stdout=None) -> None:
    org = context["org"]
    if EvidenceSample.objects.filter(organization=org).exists():
        return
    db = telemetry_db()
    reviewer = context["users"].get("demo-reviewer") or context["users"]["demo-approver"]
    actor = Actor.for_user(reviewer)
    devices = (
        Device.objects.filter(organization=org, status=Device.Status.ACTIVE)
        .exclude(site__kind=Site.Kind.CLINIC)
        .select_related("site", "organization")
        .order_by("serial")
    )
    rng = random.Random(17)  # noqa: S311 - which demo cases are mislabelled
    stored = reviewed = 0
    now = timezone.now()
    for index, device in enumerate(devices):
        epochs = dict(
            DeviceEpoch.objects.using(db).filter(device_id=device.pk).values_list("pk", "epoch")
        )
        recent = InferenceEvent.objects.using(db).filter(device_id=device.pk).order_by("-timestamp")
        columns = ("epoch_id", "sequence", "predicted_class", "confidence", "model_sha256")
        # Audit cases first, so some are among the reviewed ones: the stratified estimate
        # (the hard cases and a random share of all) has both strata to work with.
        events = list(recent.filter(confidence__gte=0.6).values_list(*columns)[:2])
        events += list(
            recent.filter(confidence__lt=0.6).values_list(*columns)[: CASES_PER_DEVICE - 2]
        )
        labels = class_labels_by_artifact(org=org, sha256s={e[4] for e in events})
        for number, (epoch_id, sequence, predicted, confidence, sha256) in enumerate(events):
            shown = predicted
            others = sorted(set(labels.get(sha256, ())) - {predicted})
            if others and rng.random() < 0.25:
                shown = rng.choice(others)
            reason = wire.LOW_CONFIDENCE if confidence < 0.6 else wire.AUDIT
            query = wire.evidence_query(
                wire.EvidenceRef(epoch=epochs[epoch_id], sequence=sequence, reason=reason)
            )
            try:
                receipt = services.receive_evidence(
                    device=device,
                    body=digit_png(shown, seed=index * 100 + number),
                    content_type="image/png",
                    query=query,
                    now=now,
                )
            except services.EvidenceRefusedError:
                continue  # the site's policy or cap says no: the demo respects it
            stored += 1
            sample = receipt.sample
            if number < REVIEWED_PER_DEVICE and sample.status == EvidenceSample.Status.LINKED:
                services.submit_review(
                    sample=sample,
                    actor=actor,
                    true_class=shown,
                    reason="" if shown == predicted else "the picture shows another digit",
                )
                reviewed += 1
    if stdout is not None:
        stdout.write(
            f"Demo evidence: {stored} samples (encrypted), {reviewed} reviewed, "
            f"{stored - reviewed} waiting in the review queue"
        )
