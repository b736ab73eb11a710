"""Query-count probes: review queue pages (merged through tests/review/query_cases.py)."""

from __future__ import annotations

import itertools
import uuid

from django.urls import reverse

from opshero.roles import Role
from tests.factories import World
from tests.query_counts import ListProbe

from .isolation_queue import linked_samples, model_ref

_seq = itertools.count(1)


def _queue(world: World) -> ListProbe:
    """Waiting samples, each of its own site, device and registered model version (so each is a
    lane of its own, and a per-lane query cannot hide), plus more in the first lane."""
    from modelregistry.models import MlModel, ModelVersion

    org = world.a.org
    first: list = []  # the oldest lane's device and model: it grows too

    def add(n: int) -> None:
        if first:
            linked_samples(org, kinds=["png"] * n, device=first[0], model=first[1])
        for _ in range(n):
            model = MlModel.objects.create(organization=org, name=f"queue-model-{next(_seq)}")
            version = ModelVersion.objects.create(
                model=model,
                version="1.0",
                artifact=f"artifacts/{uuid.uuid4().hex}.onnx",
                file_name="model.onnx",
                sha256=uuid.uuid4().hex * 2,
                size_bytes=1024,
                io_contract={"labels": ["dent", "scratch", "ok"]},
            )
            made = linked_samples(org, kinds=["json", "png"], model=model_ref(version))
            if not first:
                first.extend([made[0].device, model_ref(version)])

    return ListProbe(reverse("review:queue", kwargs={"org": org.slug}), add, role=Role.REVIEWER)


PROBES: dict = {"review:queue": _queue}
NOT_LISTS: dict[str, str] = {}
OTHER_LISTS: set[str] = set()
