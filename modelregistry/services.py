"""Model registry writes: models, version uploads, validation runs and their state machines.

The ONNX work itself lives in the Django-free ``onnxcheck`` package; this module stores
what they find, moves versions and runs through their states and enqueues runs on the
``validation`` queue after the transaction commits.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from fleet.models import HardwareTarget
from fleet.selectors import target_profile
from onnxcheck.inputs import (
    InputsRejected,
    ShapeBucketsSpec,
    canonical_shape_buckets,
    load_representative_inputs,
    npz_array_shapes,
    open_axes,
    parse_shape_buckets,
    resolve_shape_buckets,
)
from onnxcheck.inspection import (
    ModelMetadata,
    ModelRejected,
    TensorSpec,
    inspect_model,
    sha256_file,
)
from onnxcheck.results import scrub_paths
from opshero.actors import Actor
from opshero.api.parsers import load_json_text
from opshero.errors import Conflict, DomainError, InvalidInput
from opshero.models import Organization
from opshero.naming import unique_name
from opshero.services import record_audit_event
from protocol.bundles import BundleLimits, BundleRejected, is_bundle_name, unpack_bundle
from protocol.contract import IoContract, check_contract_against_outputs

from .audit import RegistryVerb
from .models import MlModel, ModelVersion, ValidationRun

logger = logging.getLogger(__name__)

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,39}$")
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")

# --- the version state machine --------------------------------------------------------------------

S = ModelVersion.Status
VERSION_TRANSITIONS: dict[str, set[str]] = {
    S.UPLOADED: {S.VALIDATING, S.RETIRED},
    S.VALIDATING: {S.VALIDATING, S.VALIDATED, S.REJECTED, S.RETIRED},
    S.VALIDATED: {S.VALIDATING, S.SIGNED, S.RETIRED},
    S.REJECTED: {S.VALIDATING, S.RETIRED},
    S.SIGNED: {S.SIGNED, S.RETIRED},
    S.RETIRED: set(),
}


def transition_version(*, version: ModelVersion, to: str) -> ModelVersion:
    """The only place a version's status changes; refuses transitions the machine lacks."""
    if to not in VERSION_TRANSITIONS[version.status]:
        raise Conflict(
            f"Version {version.version} is {version.get_status_display().lower()}; it cannot "
            f"become {ModelVersion.Status(to).label.lower()}.",
            code="invalid_transition",
        )
    version.status = to
    version.save(update_fields=["status"])
    return version


# --- the validation run state machine -------------------------------------------------------------

R = ValidationRun.Status
RUN_TRANSITIONS: dict[str, set[str]] = {
    # A worker takes the run; a run whose worker attempts are used up is an error.
    R.QUEUED: {R.RUNNING, R.ERROR},
    # running → running: a redelivered message restarts a run whose worker died. The reaper
    # (fail_stale_runs) and the attempts limit end a run in error.
    # needs review: the latency gate stayed inconclusive after its re-measure.
    R.RUNNING: {R.RUNNING, R.PASSED, R.FAILED, R.ERROR, R.NEEDS_REVIEW},
    # An approver accepts (passed) or rejects (failed) it, with a reason: review_validation_run.
    R.NEEDS_REVIEW: {R.PASSED, R.FAILED},
    R.PASSED: set(),
    R.FAILED: set(),
    R.ERROR: set(),
}


def transition_run(*, run: ValidationRun, to: str, **changes: Any) -> ValidationRun:
    """The only place a validation run's status changes; refuses transitions the machine lacks.

    ``changes`` are other fields of the run (timestamps, report, error) saved with the status.
    """
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in RUN_TRANSITIONS[run.status]:
        raise Conflict(
            f"Validation run #{run.number} is {run.get_status_display().lower()}; it cannot "
            f"become {ValidationRun.Status(to).label.lower()}.",
            code="invalid_transition",
        )
    for name, value in changes.items():
        setattr(run, name, value)
    run.status = to
    run.save(update_fields=["status", *changes])
    return run


# --- models ---------------------------------------------------------------------------------------

MODEL_FIELDS = (
    "name",
    "task",
    "workflow",
    "description",
    "latency_budget_ms",
    "max_int8_drop_points",
    "max_ece",
    "min_accuracy",
    "min_variant_top1_agreement",
    "min_variant_sqnr_db",
)


def _clean_model_values(org: Organization, values: dict[str, Any], *, model=None) -> dict:
    cleaned = {k: v for k, v in values.items() if k in MODEL_FIELDS}
    if "name" in cleaned:
        cleaned["name"] = unique_name(
            MlModel.objects.filter(organization=org), cleaned["name"], noun="model", exclude=model
        )
    if "task" in cleaned and cleaned["task"] not in MlModel.Task.values:
        raise InvalidInput("Unknown task.", fields={"task": [f"One of {MlModel.Task.values}."]})
    limits = {
        "latency_budget_ms": (0.001, 600_000),
        "max_int8_drop_points": (0, 100),
        "max_ece": (0, 1),
        "min_accuracy": (0, 1),
        "min_variant_top1_agreement": (0, 1),
        "min_variant_sqnr_db": (0, 200),
    }
    for name, (low, high) in limits.items():
        value = cleaned.get(name)
        if value is not None and not low <= value <= high:
            raise InvalidInput(
                f"{name} must be between {low} and {high}.",
                fields={name: [f"Between {low} and {high} (empty disables the gate)."]},
            )
    return cleaned


@transaction.atomic
def create_model(*, organization: Organization, actor: Actor, **values: Any) -> MlModel:
    """Register a model with its release gates; refuses a missing or taken name, an unknown task
    or a gate out of range."""
    if not values.get("name"):
        raise InvalidInput("A model needs a name.", fields={"name": ["Required."]})
    cleaned = _clean_model_values(organization, values)
    model = MlModel.objects.create(organization=organization, owner=actor.user, **cleaned)
    record_audit_event(
        organization=organization, actor=actor, verb=RegistryVerb.MODEL_CREATED, target=model
    )
    return model


@transaction.atomic
def update_model(*, model: MlModel, actor: Actor, **values: Any) -> MlModel:
    """Change a model's description or gates (audited with the changes); refuses what
    ``create_model`` refuses."""
    cleaned = _clean_model_values(model.organization, values, model=model)
    diff = {k: [getattr(model, k), v] for k, v in cleaned.items() if getattr(model, k) != v}
    if diff:
        for name, value in cleaned.items():
            setattr(model, name, value)
        model.save()
        record_audit_event(
            organization=model.organization,
            actor=actor,
            verb=RegistryVerb.MODEL_UPDATED,
            target=model,
            data=diff,
        )
    return model


# --- version upload -------------------------------------------------------------------------------


def _storage_name(kind: str, org_id: int, file_name: str) -> str:
    safe = _SAFE_NAME_RE.sub("_", Path(file_name).name)[-80:] or "model.onnx"
    return f"{kind}/{org_id}/{uuid.uuid4().hex}-{safe}"


def _fetch(stored, workdir: Path, name: str) -> Path:
    """Copy a stored file (a ``FieldFile``) into ``workdir`` through the storage API, so
    workers on other hosts and object storage (django-storages) work the same as local disk."""
    workdir.mkdir(parents=True, exist_ok=True)
    destination = workdir / name
    with stored.storage.open(stored.name, "rb") as source, destination.open("wb") as out:
        shutil.copyfileobj(source, out, length=1024 * 1024)
    return destination


def _local_path(upload) -> tuple[Path, bool]:
    """A path on disk for an uploaded file; True when it is a temporary copy to delete."""
    path = getattr(upload, "temporary_file_path", None)
    if callable(path):
        return Path(path()), False
    tmp = Path(settings.VALIDATION_WORKDIR) / f"upload-{uuid.uuid4().hex}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return tmp, True


def _check_version_label(model: MlModel, version: str) -> str:
    version = (version or "").strip()
    if not _VERSION_RE.match(version):
        raise InvalidInput(
            "A version is 1-40 characters: letters, digits and . _ + -, e.g. 1.4.0.",
            fields={"version": ["Letters, digits and . _ + - only (max 40)."]},
        )
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict(
            f"{model.name} already has a version {version}.",
            fields={"version": ["This version exists; choose the next one."]},
        )
    return version


# --- shape buckets -------------------------------------------------------------------------------

_BUCKET_CODES = {"invalid_shape_bucket", "shape_bucket_too_large", "missing_shape_bucket"}


def _bucket_budgets() -> dict[str, int]:
    return {
        "max_axis_size": settings.VALIDATION_MAX_AXIS_SIZE,
        "max_tensor_bytes": settings.VALIDATION_MAX_TENSOR_BYTES,
    }


def _shape_buckets_error(exc: InputsRejected) -> DomainError:
    """A malformed or over-budget spec is a 400 on ``shape_buckets``; a well-formed spec that
    leaves axes open is a 422 listing every open axis with a suggested size (``details``)."""
    fields = {"shape_buckets": [exc.message]}
    if exc.code == "missing_shape_bucket":
        details = {
            "open_axes": exc.details.get("open_axes", []),
            "suggested_shape_buckets": exc.details.get("suggested_shape_buckets", {}),
        }
        return InvalidInput(exc.message, fields=fields, code=exc.code, details=details)
    return DomainError(exc.message, fields=fields, code=exc.code)


def check_shape_buckets(
    *,
    value: Any,
    inputs: tuple[TensorSpec, ...],
    hints: dict[str, str] | None = None,
    data_shapes: dict[str, tuple[int, ...]] | None = None,
    allow_open: bool = False,
) -> ShapeBucketsSpec | None:
    """Check a shape-bucket spec from a request against the model and the budgets in settings
    (``VALIDATION_MAX_AXIS_SIZE``, ``VALIDATION_MAX_TENSOR_BYTES``) before any worker allocates
    memory; return it as stored (placeholder keys such as ``"?"`` rewritten to ``input[axis]``).
    ``allow_open`` (uploads): axes left open are not an error yet."""
    budgets = _bucket_budgets()
    try:
        parsed = parse_shape_buckets(value, max_axis_size=budgets["max_axis_size"])
        if parsed is not None or not allow_open:
            resolve_shape_buckets(
                inputs=inputs,
                spec=parsed,
                data_shapes=data_shapes,
                hints=hints,
                allow_open=allow_open,
                **budgets,
            )
    except InputsRejected as exc:
        raise _shape_buckets_error(exc) from exc
    return canonical_shape_buckets(inputs=inputs, spec=parsed)


def open_axes_of_upload(*, artifact) -> list[dict[str, Any]] | None:
    """The dynamic axes of an uploaded ONNX file, each with a suggested size, for the upload
    form's shape editor (nothing is stored); ``None`` when the file is not a readable model
    (the upload itself then says what is wrong)."""
    if artifact is None or artifact.size > settings.MODEL_UPLOAD_MAX_BYTES:
        return None
    path, temporary = _local_path(artifact)
    bundle_root: Path | None = None
    try:
        model_path = path
        if is_bundle_name(_user_file_name(artifact)):
            bundle_root, bundle = _unpack_upload(path, _user_file_name(artifact))
            model_path = bundle_root / bundle.entrypoint
        metadata = inspect_model(
            path=model_path, max_bytes=settings.MODEL_UPLOAD_MAX_BYTES, external_root=bundle_root
        )
        return open_axes(
            _tensor_specs_or_empty(metadata.inputs), hints=dict(metadata.metadata_props)
        )
    except (ModelRejected, InvalidInput):
        return None
    finally:
        if temporary:
            path.unlink(missing_ok=True)
        if bundle_root is not None:
            shutil.rmtree(bundle_root, ignore_errors=True)


def _tensor_specs_or_empty(inputs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    return tuple(spec for spec in inputs if spec.kind == "tensor" and spec.shape is not None)


def _stored_npz_shapes(version: ModelVersion) -> dict[str, tuple[int, ...]] | None:
    """Array shapes of a version's stored inputs, read from the .npz headers only."""
    try:
        with version.inputs_file.open("rb") as handle:
            return npz_array_shapes(handle)
    except (InputsRejected, OSError):
        return None  # the worker reports unreadable inputs as a failed step


def parse_io_contract(value: Any, *, outputs: list[dict] | None) -> dict | None:
    """An I/O contract from a request (a dict or its JSON text; empty = none), checked against
    the model's outputs (label count equals the class dimension); returned as stored."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            # The JSON body's checks (depth, numbers, NUL): the contract is stored as jsonb.
            value = load_json_text(value, field="io_contract")
        except ValueError as exc:
            raise DomainError(  # malformed: 400; a well-formed contract the graph refutes: 422
                f"The I/O contract is not valid JSON: {exc}.",
                fields={"io_contract": ["Not valid JSON."]},
                code="invalid_io_contract",
            ) from exc
    try:
        contract = IoContract.from_dict(value)
    except (TypeError, ValueError) as exc:
        raise DomainError(
            f"The I/O contract is malformed: {exc}",
            fields={"io_contract": [str(exc)]},
            code="invalid_io_contract",
        ) from exc
    problems = check_contract_against_outputs(contract, outputs or [])
    if problems:
        raise InvalidInput(
            "The I/O contract does not match the model: " + "; ".join(problems),
            fields={"io_contract": problems},
            code="io_contract_mismatch",
        )
    return contract.to_dict()


def _bundle_limits() -> BundleLimits:
    return BundleLimits(
        max_files=settings.BUNDLE_MAX_FILES,
        max_total_bytes=settings.MODEL_UPLOAD_MAX_BYTES,
        max_file_bytes=settings.MODEL_UPLOAD_MAX_BYTES,
        max_ratio=settings.BUNDLE_MAX_RATIO,
    )


def _unpack_upload(archive: Path, shown_name: str) -> tuple[Path, Any]:
    """Unpack an uploaded bundle into its own directory; (directory, Bundle). The caller
    removes the directory. Refusals name archive members only."""
    root = Path(settings.VALIDATION_WORKDIR) / f"bundle-{uuid.uuid4().hex}"
    root.mkdir(parents=True, exist_ok=False)
    try:
        return root, unpack_bundle(archive, root, limits=_bundle_limits())
    except BundleRejected as exc:
        shutil.rmtree(root, ignore_errors=True)
        message = f"{shown_name}: {exc.message}"
        raise InvalidInput(message, fields={"artifact": [message]}, code=exc.code) from exc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def upload_version(
    *,
    model: MlModel,
    actor: Actor,
    artifact,
    version: str,
    release_notes: str = "",
    inputs_file=None,
    shape_buckets: Any = None,
    derived_from: ModelVersion | None = None,
    variant_kind: str = "",
    io_contract: Any = None,
    variant_calibration: str = "",
    registration_override: str = "",
) -> ModelVersion:
    """Check an uploaded model (one ``.onnx`` file, or a ``.zip``/``.tar`` bundle of a model
    and its external-data files), optional representative inputs and I/O contract; store it,
    register it.

    ``artifact`` is an uploaded file; the SHA-256 is taken from the upload handler when it
    hashed the bytes while receiving them, else computed here. A single ``.onnx`` may
    reference no file outside itself; a bundle is unpacked into its own directory with path,
    count, size and ratio limits and its model's external data resolves only inside it.
    A variant inherits its parent's I/O contract unless given one. Nothing is stored unless
    every check passes.
    """
    version = _check_version_label(model, version)
    max_bytes = settings.MODEL_UPLOAD_MAX_BYTES
    if artifact is None:
        raise InvalidInput("Choose an ONNX file or bundle.", fields={"artifact": ["Required."]})
    if artifact.size > max_bytes:
        raise InvalidInput(
            f"The file is {artifact.size:,} bytes; the limit is {max_bytes:,}.",
            fields={"artifact": ["Too large."]},
            code="too_large",
        )
    shown_name = _user_file_name(artifact)
    path, temporary = _local_path(artifact)
    inputs_path, inputs_temporary = (None, False)
    bundle_root: Path | None = None
    try:
        if is_bundle_name(shown_name):
            bundle_root, bundle = _unpack_upload(path, shown_name)
            model_path, entrypoint = bundle_root / bundle.entrypoint, bundle.entrypoint
            files = [
                {"path": entry.path, "sha256": entry.sha256, "size": entry.size}
                for entry in bundle.files
            ]
            kind = ModelVersion.ArtifactKind.BUNDLE
        else:
            model_path, entrypoint, files = path, shown_name, None
            kind = ModelVersion.ArtifactKind.ONNX
        try:
            metadata = inspect_model(
                path=model_path, max_bytes=max_bytes, external_root=bundle_root
            )
        except ModelRejected as exc:
            message = exc.message.replace(model_path.name, Path(entrypoint).name)
            if bundle_root is not None:
                message = message.replace(str(bundle_root), "")
            raise InvalidInput(message, fields={"artifact": [message]}, code=exc.code) from exc
        # The inspection saw the server's temporary file; users know the model by its name.
        metadata = dataclasses.replace(metadata, file_name=Path(entrypoint).name)
        sha256 = getattr(artifact, "sha256", None) or sha256_file(path)
        size = path.stat().st_size
        if files is None:
            files = [{"path": shown_name, "sha256": sha256, "size": size}]
        if io_contract in (None, "", {}) and derived_from is not None:
            io_contract = derived_from.io_contract
        contract = parse_io_contract(io_contract, outputs=metadata.to_dict().get("outputs") or [])
        shape_buckets = check_shape_buckets(
            value=shape_buckets,
            inputs=metadata.inputs,
            hints=dict(metadata.metadata_props),
            allow_open=True,
        )
        if inputs_file is not None:
            inputs_path, inputs_temporary = _local_path(inputs_file)
            try:
                load_representative_inputs(
                    npz_path=inputs_path,
                    inputs=metadata.inputs,
                    shape_buckets=shape_buckets,
                    **_bucket_budgets(),
                )
            except InputsRejected as exc:
                if exc.code in _BUCKET_CODES:
                    raise _shape_buckets_error(exc) from exc
                shown = Path(getattr(inputs_file, "name", "") or "inputs.npz").name
                message = exc.message.replace(inputs_path.name, shown)
                raise InvalidInput(
                    message, fields={"inputs_file": [message]}, code=exc.code
                ) from exc
        return _store_version(
            model=model,
            actor=actor,
            path=path,
            file_name=shown_name,
            sha256=sha256,
            size=size,
            version=version,
            release_notes=release_notes,
            metadata=metadata.to_dict(),
            inputs_path=inputs_path,
            shape_buckets=shape_buckets,
            derived_from=derived_from,
            variant_kind=variant_kind,
            extra={
                "artifact_kind": kind,
                "entrypoint": entrypoint[:255],
                "files": files,
                "io_contract": contract,
                "variant_calibration": variant_calibration,
                "registration_override": registration_override,
            },
        )
    finally:
        if temporary:
            path.unlink(missing_ok=True)
        if inputs_temporary and inputs_path is not None:
            inputs_path.unlink(missing_ok=True)
        if bundle_root is not None:
            shutil.rmtree(bundle_root, ignore_errors=True)


def _user_file_name(upload) -> str:
    """The name the user gave the file (never the server's temporary name), made safe."""
    raw = getattr(upload, "original_name", None) or getattr(upload, "name", "") or ""
    name = Path(str(raw).replace("\\", "/")).name.strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"\r\n')
    return name[:200] or "model.onnx"


def _store_version(
    *,
    model: MlModel,
    actor: Actor,
    path: Path,
    file_name: str,
    sha256: str,
    size: int,
    version: str,
    release_notes: str,
    metadata: dict,
    inputs_path: Path | None,
    shape_buckets: Any,
    derived_from: ModelVersion | None,
    variant_kind: str,
    extra: dict[str, Any],
) -> ModelVersion:
    org_id = model.organization_id
    stored: list[str] = []
    try:
        with path.open("rb") as handle:
            artifact_name = default_storage.save(
                _storage_name("artifacts", org_id, file_name), File(handle)
            )
        stored.append(artifact_name)
        inputs_name, inputs_sha = "", ""
        if inputs_path is not None:
            with inputs_path.open("rb") as handle:
                inputs_name = default_storage.save(
                    _storage_name("inputs", org_id, "inputs.npz"), File(handle)
                )
            stored.append(inputs_name)
            inputs_sha = sha256_file(inputs_path)
        with transaction.atomic():
            record = ModelVersion.objects.create(
                model=model,
                version=version,
                artifact=artifact_name,
                file_name=Path(file_name).name[:200],
                sha256=sha256,
                size_bytes=size,
                release_notes=release_notes,
                metadata=metadata,
                inputs_file=inputs_name,
                inputs_sha256=inputs_sha,
                shape_buckets=shape_buckets,
                derived_from=derived_from,
                variant_kind=variant_kind,
                uploaded_by=actor.user,
                **extra,
            )
            record_audit_event(
                organization=model.organization,
                actor=actor,
                verb=RegistryVerb.MODEL_VERSION_UPLOADED,
                target=record,
                data={
                    "sha256": sha256,
                    "size_bytes": size,
                    "derived_from": derived_from.version if derived_from else None,
                    "variant": variant_kind or None,
                    "artifact_kind": extra["artifact_kind"],
                    "files": len(extra["files"]),
                    "io_contract": bool(extra["io_contract"]),
                    "registration_override": extra["registration_override"][:1000] or None,
                },
            )
    except Exception:
        for name in stored:  # no orphaned files when the database refuses the row
            default_storage.delete(name)
        raise
    return record


# --- validation runs ------------------------------------------------------------------------------


def gates_for(model: MlModel) -> dict[str, Any]:
    """The model's release gates as a validation run stores them (``None`` disables a gate)."""
    return {
        "latency_budget_ms": model.latency_budget_ms,
        "max_int8_accuracy_drop_points": model.max_int8_drop_points,
        "max_ece": model.max_ece,
        "min_accuracy": model.min_accuracy,
        "min_variant_top1_agreement": model.min_variant_top1_agreement,
        "min_variant_sqnr_db": model.min_variant_sqnr_db,
    }


@transaction.atomic
def start_validation(
    *,
    version: ModelVersion,
    target: HardwareTarget,
    actor: Actor,
    shape_buckets: Any = None,
    use_uploaded_inputs: bool = True,
) -> ValidationRun:
    """Queue a validation of ``version`` on ``target``; a Celery worker runs it after commit."""
    version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    if target.organization_id not in (None, version.model.organization_id):
        raise InvalidInput("Unknown hardware target.", fields={"target": ["Not available here."]})
    if version.status == ModelVersion.Status.SIGNED:
        raise Conflict(
            "A signed version keeps the evidence it was signed with; upload a new version to "
            "validate changes.",
            code="already_signed",
        )
    synthetic = not (use_uploaded_inputs and version.inputs_file)
    buckets = shape_buckets if shape_buckets not in (None, "", {}) else version.shape_buckets
    # Refuse now, not minutes later on a worker: every dynamic axis needs a size, within budget.
    metadata = ModelMetadata.from_dict(version.metadata)
    data_shapes = None if synthetic else _stored_npz_shapes(version)
    buckets = check_shape_buckets(
        value=buckets,
        inputs=metadata.inputs,
        hints=dict(metadata.metadata_props),
        data_shapes=data_shapes,
        allow_open=not synthetic and data_shapes is None,  # unreadable: the worker says why
    )
    transition_version(version=version, to=ModelVersion.Status.VALIDATING)
    number = (
        ValidationRun.objects.filter(version=version, target=target).aggregate(n=Max("number"))["n"]
        or 0
    ) + 1
    run = ValidationRun.objects.create(
        version=version,
        target=target,
        number=number,
        synthetic_inputs=synthetic,
        shape_buckets=buckets,
        gates=gates_for(version.model),
        requested_by=actor.user,
    )
    record_audit_event(
        organization=version.model.organization,
        actor=actor,
        verb=RegistryVerb.VALIDATION_REQUESTED,
        target=version,
        data={"run": run.pk, "target": target.name, "number": number, "synthetic": synthetic},
    )
    from .tasks import validate_model_version

    transaction.on_commit(lambda: validate_model_version.delay(run.pk))
    return run


def latest_runs_by_target(version: ModelVersion) -> dict[int, ValidationRun]:
    """The newest finished run of each target: the evidence a signature can use."""
    latest: dict[int, ValidationRun] = {}
    runs = version.validation_runs.filter(finished_at__isnull=False).select_related("target")
    for run in runs.order_by("finished_at", "pk"):
        latest[run.target_id] = run
    return latest


def _finish_version_status(version: ModelVersion) -> None:
    """After a run ends. Evidence is per (version, target): the version is validated when the
    newest finished run of at least one target passed (it is signable for those targets),
    rejected when no target's newest run passed, still validating while a run is queued,
    running or waiting for its review."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != ModelVersion.Status.VALIDATING:
        return
    runs = version.validation_runs.all()
    pending = [R.QUEUED, R.RUNNING, R.NEEDS_REVIEW]
    if runs.filter(status__in=pending).exists():
        return
    passed = any(run.status == R.PASSED for run in latest_runs_by_target(version).values())
    transition_version(
        version=version,
        to=ModelVersion.Status.VALIDATED if passed else ModelVersion.Status.REJECTED,
    )


def _finish_run(run: ValidationRun, *, status: str, error: str = "", report=None) -> None:
    with transaction.atomic():
        locked = ValidationRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_measured:
            return
        changes: dict[str, Any] = {"error": error[:4000], "finished_at": timezone.now()}
        if report is not None:
            changes["report"] = report["dict"]
            changes["report_digest"] = report["digest"]
            changes["reasons"] = report["dict"].get("reasons", [])
        transition_run(run=locked, to=status, **changes)
        _finish_version_status(locked.version)
        record_audit_event(
            organization=locked.version.model.organization,
            actor=Actor.system("validation worker"),
            verb=RegistryVerb.VALIDATION_FINISHED,
            target=locked.version,
            data={
                "run": locked.pk,
                "target": locked.target.name,
                "status": status,
                "reasons": locked.reasons[:10],
                "error": locked.error[:300] or None,
            },
        )


def _keep_variants(run: ValidationRun, report: dict) -> None:
    """Move variant files out of the scratch directory into storage, so they can be
    registered as versions later; the report then points at the stored copies."""
    for step in report.get("steps", []):
        variant = (step.get("data") or {}).get("variant")
        if not variant or not variant.get("path"):
            continue
        source = Path(variant["path"])
        if not source.exists():
            continue
        with source.open("rb") as handle:
            name = default_storage.save(
                _storage_name("variants", run.version.model.organization_id, source.name),
                File(handle),
            )
        variant["stored_name"] = name
        variant["path"] = ""  # scratch paths are meaningless once the run is over


class ArtifactMismatch(Exception):
    """The stored artifact is not the one uploaded (its digest changed)."""


def _prepare_artifact(version: ModelVersion, workdir: Path) -> tuple[Path, str, Path | None]:
    """Fetch a version's artifact into ``workdir``: (model path, its expected SHA-256, bundle
    root or None). A bundle's archive is checked against its digest, unpacked with the upload
    limits, and every unpacked file against the digest recorded at upload."""
    stored = workdir / "stored"
    if version.artifact_kind != ModelVersion.ArtifactKind.BUNDLE:
        return _fetch(version.artifact, stored, "model.onnx"), version.sha256, None
    archive = _fetch(version.artifact, stored, "bundle.archive")
    if sha256_file(archive) != version.sha256:
        raise ArtifactMismatch(
            f"the stored bundle {version.file_name} does not match the SHA-256 recorded at upload"
        )
    root = workdir / "bundle"
    root.mkdir(parents=True, exist_ok=True)
    bundle = unpack_bundle(archive, root, limits=_bundle_limits())
    recorded = {entry["path"]: entry["sha256"] for entry in version.files}
    unpacked = {entry.path: entry.sha256 for entry in bundle.files}
    if recorded != unpacked:
        raise ArtifactMismatch(
            f"the files of bundle {version.file_name} differ from those recorded at upload"
        )
    archive.unlink()
    return root / version.entrypoint, recorded[version.entrypoint], root


def _variant_arguments(version: ModelVersion, parent_path: Path | None) -> dict[str, Any]:
    """A registered variant is validated as itself: never quantized again, compared with its
    parent on the run's inputs (the parent's, copied at registration)."""
    if not version.variant_kind:
        return {}
    arguments: dict[str, Any] = {"variant_kind": version.variant_kind}
    if parent_path is not None:
        arguments["parent_model_path"] = parent_path
    return arguments


def contract_score_output(version: ModelVersion) -> str | None:
    """The output the I/O contract says holds the class scores (None: let onnxcheck find it)."""
    from protocol.contract import resolve_score_output

    contract = IoContract.from_dict(version.io_contract)
    return resolve_score_output(contract, (version.metadata or {}).get("outputs") or [])


def execute_validation_run(*, run_id: int) -> ValidationRun:
    """Run one validation (called by the Celery task). Idempotent for redeliveries: a
    finished run is left alone; a run whose worker died is restarted up to
    ``VALIDATION_MAX_ATTEMPTS`` times, then failed with that reason."""
    from onnxcheck.gates import GateThresholds
    from onnxcheck.pipeline import InputsSpec, run_validation
    from onnxcheck.runner import StepLimits

    with transaction.atomic():
        run = (
            ValidationRun.objects.select_for_update(of=("self",))
            .select_related("version__model", "target")
            .get(pk=run_id)
        )
        if run.is_measured:  # finished, or waiting for its review: a redelivery changes nothing
            return run
        run.attempts += 1
        if run.attempts > settings.VALIDATION_MAX_ATTEMPTS:
            run.save(update_fields=["attempts"])
            attempts_error = (
                f"The validation worker stopped {run.attempts - 1} times during this run "
                "(crash or restart); giving up. Re-run it when the worker is healthy."
            )
        else:
            attempts_error = ""
            now = timezone.now()
            transition_run(
                run=run,
                to=ValidationRun.Status.RUNNING,
                attempts=run.attempts,
                started_at=now,
                heartbeat_at=now,
                steps=[],
            )
    if attempts_error:
        _finish_run(run, status=ValidationRun.Status.ERROR, error=attempts_error)
        run.refresh_from_db()
        return run

    version = run.version
    workdir = Path(settings.VALIDATION_WORKDIR) / f"run-{run.pk}"
    shutil.rmtree(workdir, ignore_errors=True)
    steps: list[dict] = []

    def on_step(step) -> None:
        steps.append(step.to_dict())
        ValidationRun.objects.filter(pk=run.pk).update(steps=steps, heartbeat_at=timezone.now())

    gates = GateThresholds(
        latency_budget_ms=run.gates.get("latency_budget_ms"),
        max_int8_accuracy_drop_points=run.gates.get("max_int8_accuracy_drop_points"),
        max_ece=run.gates.get("max_ece"),
        min_accuracy=run.gates.get("min_accuracy"),
        **{  # runs queued before the variant gates existed keep the library's defaults
            key: run.gates[key]
            for key in ("min_variant_top1_agreement", "min_variant_sqnr_db")
            if key in run.gates
        },
    )
    try:
        # Artifacts come through the storage API (local disk or object storage), copied into
        # this run's work directory; the integrity step checks the copy against the digest.
        stored = workdir / "stored"
        artifact_path, expected_sha256, bundle_root = _prepare_artifact(version, workdir)
        parent_path = None
        if version.derived_from_id and version.variant_kind:
            parent = version.derived_from
            parent_path, _, _ = _prepare_artifact(parent, workdir / "parent")
        inputs = InputsSpec(
            npz_path=None
            if run.synthetic_inputs
            else _fetch(version.inputs_file, stored, "inputs.npz"),
            shape_buckets=run.shape_buckets,
            **_bucket_budgets(),
        )
        display_names = {str(artifact_path): Path(version.entrypoint or version.file_name).name}
        if parent_path is not None:
            display_names[str(parent_path)] = f"parent {version.derived_from.file_name}"
        if inputs.npz_path is not None:
            display_names[str(inputs.npz_path)] = "inputs.npz"
        report = run_validation(
            display_names=display_names,
            model_path=artifact_path,
            expected_sha256=expected_sha256,
            target=target_profile(run.target),
            inputs=inputs,
            gates=gates,
            workdir=workdir,
            on_step=on_step,
            limits=StepLimits(address_space_bytes=settings.VALIDATION_ADDRESS_SPACE_BYTES),
            max_model_bytes=settings.MODEL_UPLOAD_MAX_BYTES,
            intra_op_num_threads=settings.VALIDATION_THREADS,
            host_shared=settings.VALIDATION_HOST_SHARED,
            **_variant_arguments(version, parent_path),
            **({"bundle_root": bundle_root} if bundle_root is not None else {}),
            **({"score_output": contract_score_output(version)} if version.io_contract else {}),
        )
        report_dict = report.to_dict()
        digest = report.report_digest()
        _keep_variants(run, report_dict)
    except Exception as exc:
        logger.exception("Validation run %s failed", run.pk)
        error = scrub_paths(f"{type(exc).__name__}: {exc}", {str(workdir): ""})
        _finish_run(run, status=ValidationRun.Status.ERROR, error=error)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _finish_run(
        run,
        status={"passed": R.PASSED, "inconclusive": R.NEEDS_REVIEW}.get(report.verdict, R.FAILED),
        report={"dict": report_dict, "digest": digest},
    )
    run.refresh_from_db()
    return run


REVIEW_DECISIONS = {"accept": R.PASSED, "reject": R.FAILED}


@transaction.atomic
def review_validation_run(
    *, run: ValidationRun, actor: Actor, decision: str, reason: str
) -> ValidationRun:
    """An approver's decision on a run whose latency gate stayed inconclusive: ``accept``
    makes it passed, ``reject`` failed; the version then follows as after any finished run.
    The reason is required and audited. Callers check the role (``Action.REVIEW_VALIDATIONS``).
    """
    reason = (reason or "").strip()
    if decision not in REVIEW_DECISIONS:
        raise InvalidInput(
            "Accept or reject the run.", fields={"decision": ["One of accept, reject."]}
        )
    if not reason:
        raise InvalidInput(
            "Say why: the reason is kept with the run and in the audit log.",
            fields={"reason": ["Required."]},
        )
    locked = (
        ValidationRun.objects.select_for_update(of=("self",))
        .select_related("version__model", "target")
        .get(pk=run.pk)
    )
    if locked.status != R.NEEDS_REVIEW:
        raise Conflict(
            f"Validation run #{locked.number} is {locked.get_status_display().lower()}; only a "
            "run that needs review can be accepted or rejected.",
            code="not_in_review",
        )
    transition_run(
        run=locked,
        to=REVIEW_DECISIONS[decision],
        review_reason=reason[:4000],
        reviewed_by=actor.user,
        reviewed_at=timezone.now(),
    )
    _finish_version_status(locked.version)
    steps = (locked.report or {}).get("steps") or []
    gates_step = next((step for step in steps if step.get("name") == "gates"), {})
    latency_gate = next(
        (g for g in (gates_step.get("data") or {}).get("gates", []) if g["name"] == "latency_p95"),
        {},
    )
    record_audit_event(
        organization=locked.version.model.organization,
        actor=actor,
        verb=RegistryVerb.VALIDATION_REVIEWED,
        target=locked.version,
        data={
            "run": locked.pk,
            "number": locked.number,
            "target": locked.target.name,
            "decision": decision,
            "status": locked.status,
            "reason": reason[:1000],
            "latency_gate": latency_gate.get("reasons", [])[:5],
        },
    )
    return locked


def fail_stale_runs(*, older_than_seconds: int) -> int:
    """Fail runs whose worker went silent (killed, host lost): never "running" forever."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    stale = ValidationRun.objects.filter(
        status=ValidationRun.Status.RUNNING, heartbeat_at__lt=cutoff
    )
    count = 0
    for run in stale.select_related("version__model", "target"):
        _finish_run(
            run,
            status=ValidationRun.Status.ERROR,
            error=(
                f"The validation worker stopped reporting for over {older_than_seconds // 60} "
                "minutes (worker lost or killed). Re-run the validation."
            ),
        )
        count += 1
    return count


def run_variant(run: ValidationRun, kind: str) -> dict | None:
    """The ``kind`` variant a run produced (its report entry), or None."""
    variant = None
    for step in (run.report or {}).get("steps", []):
        candidate = (step.get("data") or {}).get("variant")
        if candidate and candidate.get("kind") == kind and step.get("status") == "passed":
            variant = candidate
    return variant


def variant_refusals(variant: dict) -> list[str]:
    """Why a produced variant should not be registered: its fidelity gates, and synthetic
    calibration (an INT8 model calibrated on random inputs quantizes the wrong ranges)."""
    refusals = list(variant.get("refusals") or [])
    if variant.get("registrable") is None and not refusals:
        refusals.append("the run did not judge this variant's fidelity")
    if variant.get("calibration") == "synthetic" and not any("synthetic" in r for r in refusals):
        refusals.append("calibrated on synthetic inputs, not on representative data")
    return refusals


def register_variant(
    *, run: ValidationRun, kind: str, actor: Actor, version: str, override_reason: str = ""
) -> ModelVersion:
    """Register a variant produced by a run as a new version derived from it: the parent's
    I/O contract, shape buckets and representative inputs come with it, so the variant's own
    validation compares it with the parent on the parent's inputs. A variant the run marked not
    registrable (fidelity below the gates, synthetic calibration, fidelity not measured) needs
    an explicit reason, kept on the version and in the audit log."""
    variant = run_variant(run, kind)
    if variant is None or not variant.get("stored_name"):
        raise InvalidInput(
            f"This run produced no usable {kind} variant (or its file was cleaned up after a "
            "newer run).",
            fields={"kind": ["Not available."]},
        )
    refusals = variant_refusals(variant)
    override_reason = (override_reason or "").strip()
    if refusals and not override_reason:
        raise Conflict(
            f"The {kind.upper()} variant is not registrable: " + "; ".join(refusals) + ". "
            "Give a reason to register it anyway (audited).",
            fields={"override_reason": refusals},
            code="variant_not_registrable",
        )
    source = run.version
    inputs_handle = source.inputs_file.open("rb") if source.inputs_file else None
    try:
        if inputs_handle is not None:
            inputs_handle.name = "inputs.npz"
        with default_storage.open(variant["stored_name"], "rb") as handle:
            # The user's name for the parent, marked with the variant kind (never a scratch name).
            handle.name = f"{Path(source.entrypoint or source.file_name).stem}.{kind}.onnx"
            handle.size = default_storage.size(variant["stored_name"])
            return upload_version(
                model=source.model,
                actor=actor,
                artifact=handle,
                version=version,
                release_notes=f"{kind.upper()} variant of {source.version} "
                f"({variant.get('method')}).",
                derived_from=source,
                variant_kind=kind,
                inputs_file=inputs_handle,
                shape_buckets=source.shape_buckets,
                variant_calibration=variant.get("calibration") or "",
                registration_override=(
                    f"{override_reason} (refused because: {'; '.join(refusals)})"
                    if refusals
                    else ""
                ),
            )
    finally:
        if inputs_handle is not None:
            inputs_handle.close()


@transaction.atomic
def retire_version(*, version: ModelVersion, actor: Actor) -> ModelVersion:
    """Retire a version for good; refuses a version that is already retired (409), and one that
    devices are assigned or would fall back to (409, naming how many): retiring it would leave
    them with a version nobody may send again, and a rollback with nothing to go back to."""
    from .models import DeviceAssignment

    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    in_use = DeviceAssignment.objects.filter(
        Q(version=version) | Q(previous_version=version)
    ).count()
    if in_use:
        raise Conflict(
            f"{in_use} device{'s' if in_use != 1 else ''} should run {version.version} or fall "
            "back to it; roll them to another version before retiring it.",
            code="version_in_use",
        )
    transition_version(version=version, to=ModelVersion.Status.RETIRED)
    record_audit_event(
        organization=version.model.organization,
        actor=actor,
        verb=RegistryVerb.MODEL_VERSION_RETIRED,
        target=version,
    )
    return version
