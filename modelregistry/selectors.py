"""Model registry reads, each starting from an organisation."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, OuterRef, QuerySet, Subquery

from opshero.models import Organization

from .models import MlModel, ModelSignature, ModelVersion, SigningKey, ValidationRun


def models_for_org(*, org: Organization) -> QuerySet[MlModel]:
    latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        MlModel.objects.filter(organization=org)
        .annotate(
            version_count=Count("versions", distinct=True),
            latest_version=Subquery(latest.values("version")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
        )
        .select_related("owner")
        .order_by("name")
    )


def model_for_org(*, org: Organization, pk: int) -> MlModel | None:
    return MlModel.objects.filter(organization=org, pk=pk).first()


def versions_for_model(*, model: MlModel) -> QuerySet[ModelVersion]:
    return model.versions.select_related("derived_from", "uploaded_by").order_by(
        "-created_at", "-pk"
    )


def version_for_org(*, org: Organization, pk: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(model__organization=org, pk=pk)
        .select_related("model", "derived_from", "uploaded_by")
        .first()
    )


def runs_for_version(*, version: ModelVersion) -> QuerySet[ValidationRun]:
    return version.validation_runs.select_related("target", "requested_by").order_by(
        "-created_at", "-pk"
    )


def run_for_org(*, org: Organization, pk: int) -> ValidationRun | None:
    return (
        ValidationRun.objects.filter(version__model__organization=org, pk=pk)
        .select_related("version__model", "target")
        .first()
    )


def latest_finished_run(*, version: ModelVersion) -> ValidationRun | None:
    return (
        version.validation_runs.filter(finished_at__isnull=False)
        .select_related("target")
        .order_by("-finished_at", "-pk")
        .first()
    )


def signatures_for_version(*, version: ModelVersion) -> QuerySet[ModelSignature]:
    return version.signatures.select_related("key", "signed_by").order_by("-created_at", "-pk")


def latest_signature(*, version: ModelVersion) -> ModelSignature | None:
    """The newest signature made with a key that is still active."""
    return (
        version.signatures.filter(key__status=SigningKey.Status.ACTIVE)
        .select_related("key")
        .order_by("-created_at", "-pk")
        .first()
    )


def signing_keys_for_org(*, org: Organization) -> QuerySet[SigningKey]:
    return (
        SigningKey.objects.filter(organization=org)
        .annotate(signature_count=Count("signatures"))
        .order_by("-created_at")
    )


def finished_runs_for_org(*, org: Organization) -> QuerySet[ValidationRun]:
    """Finished runs with reports, newest first (for planned-vs-measured)."""
    return (
        ValidationRun.objects.filter(
            version__model__organization=org, finished_at__isnull=False, report__isnull=False
        )
        .select_related("version__model", "target")
        .order_by("-finished_at", "-pk")
    )


def download_name(version, suffix: str = "") -> str:
    """A readable download name: model, version and the user's file name."""
    name = f"{version.model.name}-{version.version}-{version.file_name}{suffix}"
    return "".join(ch if ch.isalnum() or ch in "._-+" else "_" for ch in name)[:200]


def class_labels_by_artifact(*, org: Organization, sha256s: Iterable[str]) -> dict[str, frozenset]:
    """The classes each of the organisation's model artifacts can predict, from its I/O contract.

    Keyed by artifact SHA-256; artifacts without labels in their contract are left out (their
    classes are not known, so telemetry about them is not checked against any).
    """
    wanted = set(sha256s)
    if not wanted:
        return {}
    rows = ModelVersion.objects.filter(
        model__organization=org, sha256__in=wanted, io_contract__isnull=False
    ).values_list("sha256", "io_contract")
    labels: dict[str, frozenset] = {}
    for sha256, contract in rows:
        names = (contract or {}).get("labels") or []
        if names:
            labels[sha256] = labels.get(sha256, frozenset()) | frozenset(map(str, names))
    return labels


def artifact_sha256s_for_model(*, org: Organization, model: MlModel) -> tuple[str, ...]:
    """The artifact digests of every version of ``model``, if it belongs to ``org`` (else none).

    Telemetry names a model version by its artifact's SHA-256, so this is how a reader of the
    fleet's figures finds the events of one model.
    """
    return tuple(
        ModelVersion.objects.filter(model__organization=org, model=model)
        .order_by("pk")
        .values_list("sha256", flat=True)
    )
