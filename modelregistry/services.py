"""Model registry writes: models, version uploads, validation runs and their state machines.

The ONNX work itself lives in the Django-free ``onnxcheck`` package; this module stores
what they find, moves versions and runs through their states and enqueues runs on the
``validation`` queue after the transaction commits.
"""

from __future__ import annotations

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
from django.db.models import Max
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
from opshero.errors import Conflict, DomainError, InvalidInput
from opshero.models import Organization
from opshero.naming import unique_name
from opshero.services import record_audit_event

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
    try:
        metadata = inspect_model(path=path, max_bytes=settings.MODEL_UPLOAD_MAX_BYTES)
        return open_axes(
            _tensor_specs_or_empty(metadata.inputs), hints=dict(metadata.metadata_props)
        )
    except ModelRejected:
        return None
    finally:
        if temporary:
            path.unlink(missing_ok=True)


def _tensor_specs_or_empty(inputs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    return tuple(spec for spec in inputs if spec.kind == "tensor" and spec.shape is not None)


def _stored_npz_shapes(version: ModelVersion) -> dict[str, tuple[int, ...]] | None:
    """Array shapes of a version's stored inputs, read from the .npz headers only."""
    try:
        with version.inputs_file.open("rb") as handle:
            return npz_array_shapes(handle)
    except (InputsRejected, OSError):
        return None  # the worker reports unreadable inputs as a failed step


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
) -> ModelVersion:
    """Check an uploaded ONNX file (and optional representative inputs), store it, register it.

    ``artifact`` is an uploaded file; the SHA-256 is taken from the upload handler when it
    hashed the bytes while receiving them, else computed here. Nothing is stored unless every
    check passes.
    """
    version = _check_version_label(model, version)
    max_bytes = settings.MODEL_UPLOAD_MAX_BYTES
    if artifact is None:
        raise InvalidInput("Choose an ONNX file.", fields={"artifact": ["Required."]})
    if artifact.size > max_bytes:
        raise InvalidInput(
            f"The file is {artifact.size:,} bytes; the limit is {max_bytes:,}.",
            fields={"artifact": ["Too large."]},
            code="too_large",
        )
    path, temporary = _local_path(artifact)
    inputs_path, inputs_temporary = (None, False)
    try:
        shown_name = Path(getattr(artifact, "name", "") or "model.onnx").name
        try:
            metadata = inspect_model(path=path, max_bytes=max_bytes)
        except ModelRejected as exc:
            message = exc.message.replace(path.name, shown_name)  # not the server's temp name
            raise InvalidInput(message, fields={"artifact": [message]}, code=exc.code) from exc
        sha256 = getattr(artifact, "sha256", None) or sha256_file(path)
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
            file_name=getattr(artifact, "name", "model.onnx"),
            sha256=sha256,
            size=path.stat().st_size,
            version=version,
            release_notes=release_notes,
            metadata=metadata.to_dict(),
            inputs_path=inputs_path,
            shape_buckets=shape_buckets,
            derived_from=derived_from,
            variant_kind=variant_kind,
        )
    finally:
        if temporary:
            path.unlink(missing_ok=True)
        if inputs_temporary and inputs_path is not None:
            inputs_path.unlink(missing_ok=True)


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


def _finish_version_status(version: ModelVersion) -> None:
    """After a run ends: validated when the newest finished run passed, rejected otherwise,
    still validating while another run is queued, running or waiting for its review."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != ModelVersion.Status.VALIDATING:
        return
    runs = version.validation_runs.all()
    pending = [R.QUEUED, R.RUNNING, R.NEEDS_REVIEW]
    if runs.filter(status__in=pending).exists():
        return
    latest = runs.filter(finished_at__isnull=False).order_by("-finished_at", "-pk").first()
    passed = latest is not None and latest.status == ValidationRun.Status.PASSED
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
    )
    try:
        # Artifacts come through the storage API (local disk or object storage), copied into
        # this run's work directory; the integrity step checks the copy against the digest.
        stored = workdir / "stored"
        artifact_path = _fetch(version.artifact, stored, "model.onnx")
        inputs = InputsSpec(
            npz_path=None
            if run.synthetic_inputs
            else _fetch(version.inputs_file, stored, "inputs.npz"),
            shape_buckets=run.shape_buckets,
            **_bucket_budgets(),
        )
        display_names = {str(artifact_path): version.file_name or "model.onnx"}
        if inputs.npz_path is not None:
            display_names[str(inputs.npz_path)] = "inputs.npz"
        report = run_validation(
            display_names=display_names,
            model_path=artifact_path,
            expected_sha256=version.sha256,
            target=target_profile(run.target),
            inputs=inputs,
            gates=gates,
            workdir=workdir,
            on_step=on_step,
            limits=StepLimits(address_space_bytes=settings.VALIDATION_ADDRESS_SPACE_BYTES),
            max_model_bytes=settings.MODEL_UPLOAD_MAX_BYTES,
            intra_op_num_threads=settings.VALIDATION_THREADS,
            host_shared=settings.VALIDATION_HOST_SHARED,
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


def register_variant(*, run: ValidationRun, kind: str, actor: Actor, version: str) -> ModelVersion:
    """Register a quantized variant produced by a run as a new version derived from it."""
    report = run.report or {}
    variant = None
    for step in report.get("steps", []):
        candidate = (step.get("data") or {}).get("variant")
        if candidate and candidate.get("kind") == kind and step.get("status") == "passed":
            variant = candidate
    if variant is None or not variant.get("stored_name"):
        raise InvalidInput(
            f"This run produced no usable {kind} variant.", fields={"kind": ["Not available."]}
        )
    source = run.version
    with default_storage.open(variant["stored_name"], "rb") as handle:
        handle.name = variant.get("file_name") or f"{source.file_name}.{kind}.onnx"
        handle.size = default_storage.size(variant["stored_name"])
        return upload_version(
            model=source.model,
            actor=actor,
            artifact=handle,
            version=version,
            release_notes=f"{kind.upper()} variant of {source.version} ({variant.get('method')}).",
            derived_from=source,
            variant_kind=kind,
            inputs_file=None,
            shape_buckets=source.shape_buckets,
        )


@transaction.atomic
def retire_version(*, version: ModelVersion, actor: Actor) -> ModelVersion:
    """Retire a version for good; refuses a version that is already retired (409)."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    transition_version(version=version, to=ModelVersion.Status.RETIRED)
    record_audit_event(
        organization=version.model.organization,
        actor=actor,
        verb=RegistryVerb.MODEL_VERSION_RETIRED,
        target=version,
    )
    return version
