"""Isolation probes: review queue pages (merged through tests/review/isolation_cases.py).

``linked_samples`` builds waiting cases the way a gateway makes them (an inference event
ingested, then its evidence received and linked); the queue's view, query-count and browser
tests use it too."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.urls import reverse

from opshero.roles import Role
from protocol import evidence as wire
from protocol import telemetry as telemetry_wire
from tests.factories import World, enroll_device, make_site
from tests.telemetry.builders import EPOCH, MODEL

from .builders import json_sample, low_confidence, open_evidence_policy, png_bytes, store_events

if TYPE_CHECKING:
    from tests.isolation import Probe

_sequence = itertools.count(1000)


def model_ref(version) -> telemetry_wire.ModelRef:
    """The reference a gateway running ``version`` puts on its events."""
    return telemetry_wire.ModelRef(
        name=version.model.name, version=version.version, sha256=version.sha256
    )


def linked_samples(
    org,
    *,
    kinds: list[str],
    site=None,
    device=None,
    model=MODEL,
    predicted: str = "dent",
    confidence: float = 0.41,
    reason: str = "low_confidence",
):
    """One waiting (linked) sample per entry of ``kinds`` ("png" or "json"), oldest first, each
    of its own inference event of ``model``, sent by ``device`` or a new device at ``site`` (a
    new dock taking evidence by default; a given site's policy must take it already)."""
    from review import services

    if device is None:
        if site is None:
            site = make_site(org, name=f"Dock {uuid.uuid4().hex[:6]}", kind="dock")
            open_evidence_policy(site)
        device, _ = enroll_device(org, site=site)
    made = []
    for kind in kinds:
        seq = next(_sequence)
        store_events(
            device, [low_confidence(seq, predicted=predicted, confidence=confidence, model=model)]
        )
        body = png_bytes() if kind == "png" else json_sample(case=seq, note="<b>not html</b>")
        receipt = services.receive_evidence(
            device=device,
            body=body,
            content_type="image/png" if kind == "png" else "application/json",
            query=wire.evidence_query(wire.EvidenceRef(epoch=EPOCH, sequence=seq, reason=reason)),
        )
        assert receipt.sample.status == "linked", receipt.sample.status
        made.append(receipt.sample)
    return made


def _tenant_a_sample(world: World):
    from .builders import registered_model

    registered_model(world.a.org)
    return linked_samples(world.a.org, kinds=["json"])[0]


def _url(name: str, world: World, sample=None) -> str:
    kwargs = {"org": world.a.org.slug}
    if sample is not None:
        kwargs["sample_id"] = sample.pk
    return reverse(name, kwargs=kwargs)


def _get(name: str) -> Callable[[World], list[Probe]]:
    def build(world: World) -> list[Probe]:
        from tests.isolation import Probe  # tests.isolation imports this module

        sample = _tenant_a_sample(world)
        url = _url(name, world, None if name == "review:queue" else sample)
        return [Probe("GET", url, insider_role=Role.REVIEWER)]

    return build


def _submit(world: World) -> list[Probe]:
    from review.models import EvidenceSample, Review
    from tests.isolation import Probe

    sample = _tenant_a_sample(world)

    def state():
        return (
            list(EvidenceSample.objects.filter(pk=sample.pk).values_list("status")),
            Review.objects.count(),
        )

    return [
        Probe(
            "POST",
            _url("review:submit", world, sample),
            data={"true_class": "scratch", "reason": "outsider"},
            insider_role=Role.REVIEWER,
            insider_status=302,
            state=state,
        )
    ]


CASES: dict[str, Callable[[World], list[Probe]]] = {
    "review:queue": _get("review:queue"),
    "review:item": _get("review:item"),
    "review:content": _get("review:content"),
    "review:submit": _submit,
}
