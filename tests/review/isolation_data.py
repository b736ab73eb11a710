"""Isolation probes: review data pages (what left the sites, deletions, retention, exports).

Also the small builders the data tests share: a stored (and reviewed) sample made through the
real services, and the evidence store pointed at the test's own directory."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.urls import reverse

from opshero.actors import Actor
from opshero.roles import Role
from protocol import evidence as wire
from tests.telemetry.builders import EPOCH

from .builders import low_confidence, store_events

SYSTEM = Actor.system("tests")


def Probe(*args, **kwargs):
    # tests.isolation imports this module (through isolation_cases): import it on use.
    from tests.isolation import Probe as IsolationProbe

    return IsolationProbe(*args, **kwargs)


def own_evidence_root() -> Path:
    """The evidence store beside the test's own media root (tests outside tests/review have no
    ``evidence_root`` fixture; the per-test settings override is undone after the test)."""
    root = Path(settings.MEDIA_ROOT).parent / "evidence"
    settings.EVIDENCE_ROOT = root
    return root


def stored_sample(
    device,
    body: bytes,
    *,
    sequence: int,
    media: str = wire.JSON,
    linked: bool = True,
    predicted: str = "dent",
    confidence: float = 0.41,
    reason: str = "low_confidence",
    now=None,
):
    """A sample received through ``review.services.receive_evidence`` (its event stored first
    when ``linked``)."""
    from review import services

    if linked:
        store_events(device, [low_confidence(sequence, predicted=predicted, confidence=confidence)])
    query = wire.evidence_query(wire.EvidenceRef(epoch=EPOCH, sequence=sequence, reason=reason))
    receipt = services.receive_evidence(
        device=device, body=body, content_type=media, query=query, now=now
    )
    return receipt.sample


def reviewed_sample(
    device,
    body: bytes,
    *,
    sequence: int,
    true_class: str = "scratch",
    review_reason: str = "",
    **kw,
):
    """A stored sample, linked and reviewed (corrected to ``true_class`` by default)."""
    from review import services

    sample = stored_sample(device, body, sequence=sequence, **kw)
    review = services.submit_review(
        sample=sample, actor=SYSTEM, true_class=true_class, reason=review_reason
    )
    return review.sample


def _ledger(name: str):
    def build(world) -> list:
        from django.utils import timezone

        from telemetry.services import record_data_sent
        from tests.factories import make_site

        site = make_site(world.a.org, "Tenant a's ledger dock")

        record_data_sent(
            organization_id=world.a.org.pk,
            site_id=site.pk,
            kind="events",
            records=10,
            size=1234,
            day=timezone.now().date(),
        )
        url = reverse(name, kwargs={"org": world.a.org.slug})
        return [Probe("GET", f"{url}?days=7&site={site.pk}", insider_role=Role.VIEWER)]

    return build


def _deletions(world) -> list:
    from django.utils import timezone

    from review.models import EvidenceDeletionRun

    EvidenceDeletionRun.objects.create(
        organization=world.a.org, cause="retention", ran_at=timezone.now(), samples=3, bytes=99
    )
    url = reverse("review:deletions", kwargs={"org": world.a.org.slug})
    return [Probe("GET", url, insider_role=Role.REVIEWER)]


def _settings(world) -> list:
    from review.models import EvidenceSettings

    def state():
        return list(
            EvidenceSettings.objects.filter(organization=world.a.org).values_list(
                "retention_days", "clinic_retention_days"
            )
        )

    url = reverse("review:settings", kwargs={"org": world.a.org.slug})
    return [
        Probe("GET", url, insider_role=Role.ADMIN),
        Probe(
            "POST",
            url,
            data={"retention_days": "20", "clinic_retention_days": "5"},
            insider_role=Role.ADMIN,
            insider_status=302,
            state=state,
        ),
    ]


def _exports(world) -> list:
    from review.models import LabelledExport

    def state():
        return LabelledExport.objects.filter(organization=world.a.org).count()

    url = reverse("review:exports", kwargs={"org": world.a.org.slug})
    return [
        Probe("GET", url, insider_role=Role.APPROVER),
        Probe(
            "POST",
            url,
            data={"include_device_ids": ""},
            insider_role=Role.APPROVER,
            insider_status=302,
            state=state,
        ),
    ]


def _export_download(world) -> list:
    from review import exports

    own_evidence_root()
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    url = reverse(
        "review:export-download", kwargs={"org": world.a.org.slug, "export_id": export.pk}
    )
    return [Probe("GET", url, insider_role=Role.APPROVER)]


CASES: dict = {
    "review:ledger": _ledger("review:ledger"),
    "review:ledger-export": _ledger("review:ledger-export"),
    "review:deletions": _deletions,
    "review:settings": _settings,
    "review:exports": _exports,
    "review:export-download": _export_download,
}

__all__ = ["CASES", "own_evidence_root", "reviewed_sample", "stored_sample"]
