"""Query-count probes: review data pages (the ledger and its CSV, deletions, exports)."""

from __future__ import annotations

import itertools

from django.urls import reverse
from django.utils import timezone

from opshero.roles import Role
from tests.factories import World, make_member, make_site
from tests.query_counts import ListProbe

_seq = itertools.count(1)


def _url(name: str, world: World, query: str = "") -> str:
    return reverse(name, kwargs={"org": world.a.org.slug}) + query


def _add_ledger_rows(world: World):
    """Each row a new site that sent events and evidence on two days."""
    from datetime import timedelta

    from telemetry.services import record_data_sent

    def add(n: int) -> None:
        today = timezone.now().date()
        for _ in range(n):
            site = make_site(world.a.org, f"Ledger site {next(_seq)}")
            for day in (today, today - timedelta(days=1)):
                for kind in ("events", "evidence"):
                    record_data_sent(
                        organization_id=world.a.org.pk,
                        site_id=site.pk,
                        kind=kind,
                        records=3,
                        size=300,
                        day=day,
                    )

    return add


def _ledger(name: str):
    def build(world: World) -> ListProbe:
        return ListProbe(_url(name, world, "?days=7"), _add_ledger_rows(world), role=Role.VIEWER)

    return build


def _deletions(world: World) -> ListProbe:
    from review.models import EvidenceDeletionRun

    def add(n: int) -> None:
        for _ in range(n):
            EvidenceDeletionRun.objects.create(
                organization=world.a.org,
                cause="retention",
                ran_at=timezone.now(),
                samples=2,
                bytes=200,
                oldest_received_at=timezone.now(),
                newest_received_at=timezone.now(),
            )

    return ListProbe(_url("review:deletions", world), add, role=Role.REVIEWER)


def _exports(world: World) -> ListProbe:
    """Each row an export by a new member, with a new site and a new model version to choose."""
    from modelregistry.models import MlModel, ModelVersion
    from review.models import LabelledExport

    def add(n: int) -> None:
        for _ in range(n):
            member = make_member(world.a.org, Role.APPROVER)
            make_site(world.a.org, f"Export site {next(_seq)}")
            LabelledExport.objects.create(
                organization=world.a.org,
                created_by=member.user,
                status="ready",
                samples=4,
                size_bytes=4096,
                sha256="b" * 64,
                object_name="exports/none.zip",
                options={"site_ids": [], "include_device_ids": True},
            )
            n_ = next(_seq)
            model = MlModel.objects.create(organization=world.a.org, name=f"export model {n_}")
            ModelVersion.objects.create(
                model=model,
                version="v1",
                artifact=f"artifacts/m{n_}.onnx",
                file_name=f"m{n_}.onnx",
                sha256=f"{n_:064x}",
                size_bytes=1,
            )

    return ListProbe(_url("review:exports", world), add, role=Role.APPROVER)


PROBES: dict = {
    "review:ledger": _ledger("review:ledger"),
    "review:ledger-export": _ledger("review:ledger-export"),
    "review:deletions": _deletions,
    "review:exports": _exports,
}
NOT_LISTS: dict[str, str] = {"review:settings": "a form (the organisation's retention schedule)"}
OTHER_LISTS: set[str] = set()
