"""Isolation probes: review accuracy pages (merged through tests/review/isolation_cases.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.urls import reverse

from opshero.actors import Actor
from opshero.roles import Role
from tests.factories import World

if TYPE_CHECKING:
    from tests.isolation import Probe


def reviewed_samples(org, *, model=None, n: int = 1, wrong: int = 0, reason: str = "audit"):
    """``n`` reviewed cases of ``model`` at a new dock, ``wrong`` of them corrected."""
    from review.services import submit_review
    from tests.telemetry.builders import MODEL

    from .isolation_queue import linked_samples

    samples = linked_samples(
        org, kinds=["json"] * n, model=model or MODEL, confidence=0.8, reason=reason
    )
    return [
        submit_review(
            sample=sample,
            actor=Actor.system("tests"),
            true_class="ok" if i < wrong else sample.predicted_class,
        )
        for i, sample in enumerate(samples)
    ]


def _accuracy(world: World) -> list[Probe]:
    from tests.isolation import Probe

    from .builders import registered_model

    version = registered_model(world.a.org)
    review = reviewed_samples(world.a.org, n=2, wrong=1)[0]
    base = reverse("review:accuracy", kwargs={"org": world.a.org.slug})
    return [
        Probe("GET", base, insider_role=Role.VIEWER),
        Probe(
            "GET",
            f"{base}?site={review.site_id}&version={version.pk}&days=90",
            insider_role=Role.VIEWER,
        ),
    ]


CASES: dict[str, Callable[[World], list[Probe]]] = {"review:accuracy": _accuracy}
