"""Query-count probes: review accuracy pages (merged through tests/review/query_cases.py)."""

from __future__ import annotations

import itertools
import uuid

from django.urls import reverse

from opshero.roles import Role
from tests.factories import World
from tests.query_counts import ListProbe

_seq = itertools.count(1)


def _accuracy(world: World) -> ListProbe:
    """Rows are site x version scopes: each added one has its own site, device and registered
    model version (with a validation run), two reviews (one corrected) and its telemetry."""
    from fleet.models import HardwareTarget
    from modelregistry.models import MlModel, ModelVersion, ValidationRun
    from telemetry import rollups

    from .isolation_accuracy import reviewed_samples
    from .isolation_queue import model_ref

    org = world.a.org
    target = HardwareTarget.objects.get(builtin_key="cpu")

    def add(n: int) -> None:
        for _ in range(n):
            model = MlModel.objects.create(organization=org, name=f"accuracy-model-{next(_seq)}")
            version = ModelVersion.objects.create(
                model=model,
                version="1.0",
                artifact=f"artifacts/{uuid.uuid4().hex}.onnx",
                file_name="model.onnx",
                sha256=uuid.uuid4().hex * 2,
                size_bytes=1024,
                io_contract={"labels": ["dent", "scratch", "ok"]},
            )
            ValidationRun.objects.create(
                version=version,
                target=target,
                number=1,
                status="passed",
                report={
                    "passed": True,
                    "steps": [
                        {
                            "name": "calibration",
                            "status": "passed",
                            "data": {"accuracy": 0.93, "ece": 0.04},
                        }
                    ],
                },
                report_digest=uuid.uuid4().hex * 2,
                finished_at=version.created_at,
            )
            reviewed_samples(org, model=model_ref(version), n=2, wrong=1)
        rollups.roll_up_marked()

    return ListProbe(reverse("review:accuracy", kwargs={"org": org.slug}), add, role=Role.VIEWER)


PROBES: dict = {"review:accuracy": _accuracy}
NOT_LISTS: dict[str, str] = {}
OTHER_LISTS: set[str] = set()
