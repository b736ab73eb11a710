"""The registry's state machines: versions, validation runs and signing keys.

``modelregistry.services.VERSION_TRANSITIONS`` / ``transition_version``,
``modelregistry.services.RUN_TRANSITIONS`` / ``transition_run`` and
``modelregistry.signing_services.KEY_TRANSITIONS`` / ``transition_signing_key``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from modelregistry import services, signing_services
from modelregistry.models import MlModel, ModelVersion, SigningKey, ValidationRun
from opshero.actors import Actor
from opshero.errors import Conflict
from opshero.models import AuditEvent
from tests.factories import make_target

pytestmark = pytest.mark.django_db

V = ModelVersion.Status
R = ValidationRun.Status
K = SigningKey.Status


def _pairs(status) -> list[tuple[str, str]]:
    return list(itertools.product(status.values, status.values))


def _table(transitions) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in transitions.items() for b in targets}


def _version(org, status=V.UPLOADED) -> ModelVersion:
    model = MlModel.objects.create(organization=org, name=f"m-{MlModel.objects.count()}")
    return ModelVersion.objects.create(
        model=model,
        version="1.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256="0" * 64,
        size_bytes=1,
        status=status,
    )


def _run(org, status=R.QUEUED, **values) -> ValidationRun:
    return ValidationRun.objects.create(
        version=_version(org), target=make_target(org), number=3, status=status, **values
    )


def _key(org, status=K.ACTIVE) -> SigningKey:
    return SigningKey.objects.create(
        organization=org,
        key_id=f"{SigningKey.objects.count():064d}",
        public_pem="-",
        private_key_encrypted=b"-",
        status=status,
    )


# --- versions -------------------------------------------------------------------------------

VERSION_ALLOWED = {
    (V.UPLOADED, V.VALIDATING),
    (V.UPLOADED, V.RETIRED),
    (V.VALIDATING, V.VALIDATING),
    (V.VALIDATING, V.VALIDATED),
    (V.VALIDATING, V.REJECTED),
    (V.VALIDATING, V.RETIRED),
    (V.VALIDATED, V.VALIDATING),
    (V.VALIDATED, V.SIGNED),
    (V.VALIDATED, V.RETIRED),
    (V.REJECTED, V.VALIDATING),
    (V.REJECTED, V.RETIRED),
    (V.SIGNED, V.SIGNED),
    (V.SIGNED, V.RETIRED),
}


def test_the_version_table_covers_every_status():
    assert set(services.VERSION_TRANSITIONS) == set(V.values)
    assert _table(services.VERSION_TRANSITIONS) == VERSION_ALLOWED


@pytest.mark.parametrize(("start", "to"), _pairs(V))
def test_version_transitions(world, start, to):
    version = _version(world.a.org, status=start)
    if (start, to) in VERSION_ALLOWED:
        services.transition_version(version=version, to=to)
        version.refresh_from_db()
        assert version.status == to
        return
    with pytest.raises(Conflict) as err:
        services.transition_version(version=version, to=to)
    assert err.value.code == "invalid_transition"
    assert err.value.message == (
        f"Version 1.0.0 is {V(start).label.lower()}; it cannot become {V(to).label.lower()}."
    )
    version.refresh_from_db()
    assert version.status == start


# --- validation runs ------------------------------------------------------------------------

RUN_ALLOWED = {
    (R.QUEUED, R.RUNNING),
    (R.QUEUED, R.ERROR),
    (R.RUNNING, R.RUNNING),  # a redelivered message restarts a run whose worker died
    (R.RUNNING, R.PASSED),
    (R.RUNNING, R.FAILED),
    (R.RUNNING, R.ERROR),
    (R.RUNNING, R.NEEDS_REVIEW),  # the latency gate stayed inconclusive
    (R.NEEDS_REVIEW, R.PASSED),  # an approver accepts it
    (R.NEEDS_REVIEW, R.FAILED),  # or rejects it
}


def test_the_run_table_covers_every_status_and_finished_runs_stay_finished():
    assert set(services.RUN_TRANSITIONS) == set(R.values)
    assert _table(services.RUN_TRANSITIONS) == RUN_ALLOWED
    for finished in ValidationRun.FINISHED:
        assert services.RUN_TRANSITIONS[finished] == set()


@pytest.mark.parametrize(("start", "to"), [p for p in _pairs(R) if p in RUN_ALLOWED])
def test_allowed_run_transitions_are_saved(world, start, to):
    run = _run(world.a.org, status=start)
    services.transition_run(run=run, to=to)
    run.refresh_from_db()
    assert run.status == to


@pytest.mark.parametrize(("start", "to"), [p for p in _pairs(R) if p not in RUN_ALLOWED])
def test_other_run_transitions_are_refused_with_both_states_named(world, start, to):
    run = _run(world.a.org, status=start)
    with pytest.raises(Conflict) as err:
        services.transition_run(run=run, to=to, error="never saved")
    assert err.value.code == "invalid_transition" and err.value.status == 409
    assert err.value.message == (
        f"Validation run #3 is {R(start).label.lower()}; it cannot become {R(to).label.lower()}."
    )
    run.refresh_from_db()
    assert run.status == start and run.error == ""


def test_run_fields_given_with_the_transition_are_saved_with_it_and_nothing_else(world):
    run = _run(world.a.org, status=R.RUNNING)
    ValidationRun.objects.filter(pk=run.pk).update(steps=[{"name": "integrity"}])
    at = timezone.now()
    services.transition_run(run=run, to=R.ERROR, error="worker lost", finished_at=at)
    run.refresh_from_db()
    assert (run.status, run.error, run.finished_at) == (R.ERROR, "worker lost", at)
    assert run.steps == [{"name": "integrity"}]  # a heartbeat's write is not overwritten
    with pytest.raises(TypeError):
        services.transition_run(run=run, to=R.ERROR, status=R.PASSED)


def test_a_redelivered_message_for_a_finished_run_changes_nothing(world):
    run = _run(world.a.org, status=R.PASSED, attempts=1, finished_at=timezone.now())
    result = services.execute_validation_run(run_id=run.pk)
    assert (result.status, result.attempts) == (R.PASSED, 1)
    run.refresh_from_db()
    assert (run.status, run.attempts) == (R.PASSED, 1)
    assert not AuditEvent.objects.filter(verb="validation.finished").exists()


def test_a_queued_run_without_attempts_left_ends_in_error(world, settings):
    settings.VALIDATION_MAX_ATTEMPTS = 0
    run = _run(world.a.org, status=R.QUEUED)
    result = services.execute_validation_run(run_id=run.pk)
    assert result.status == R.ERROR and "giving up" in result.error
    assert result.finished_at is not None and result.attempts == 1
    event = AuditEvent.objects.get(verb="validation.finished")
    assert event.data["status"] == "error"


def test_the_reaper_ends_only_silent_running_runs(world):
    old = timezone.now() - timedelta(hours=2)
    silent = _run(world.a.org, status=R.RUNNING, heartbeat_at=old)
    queued = _run(world.a.org, status=R.QUEUED)
    passed = _run(world.a.org, status=R.PASSED, heartbeat_at=old, finished_at=old)
    assert services.fail_stale_runs(older_than_seconds=3600) == 1
    for run in (silent, queued, passed):
        run.refresh_from_db()
    assert silent.status == R.ERROR and "stopped reporting" in silent.error
    assert (queued.status, passed.status) == (R.QUEUED, R.PASSED)


# --- signing keys ---------------------------------------------------------------------------

KEY_ALLOWED = {(K.ACTIVE, K.RETIRED)}


def test_the_key_table_covers_every_status_and_retired_is_for_good():
    assert set(signing_services.KEY_TRANSITIONS) == set(K.values)
    assert _table(signing_services.KEY_TRANSITIONS) == KEY_ALLOWED


def test_an_active_key_is_retired_with_its_time(world):
    key = _key(world.a.org)
    at = timezone.now()
    signing_services.transition_signing_key(key=key, to=K.RETIRED, retired_at=at)
    key.refresh_from_db()
    assert (key.status, key.retired_at) == (K.RETIRED, at)


@pytest.mark.parametrize(("start", "to"), [p for p in _pairs(K) if p not in KEY_ALLOWED])
def test_other_key_transitions_are_refused_with_both_states_named(world, start, to):
    key = _key(world.a.org, status=start)
    with pytest.raises(Conflict) as err:
        signing_services.transition_signing_key(key=key, to=to, retired_at=timezone.now())
    assert err.value.code == "invalid_transition"
    assert err.value.message == (
        f"Signing key {key.key_id[:16]}… is {K(start).label.lower()}; it cannot become "
        f"{K(to).label.lower()}."
    )
    key.refresh_from_db()
    assert key.status == start and key.retired_at is None


def test_retiring_a_retired_key_keeps_its_own_error(world):
    key = _key(world.a.org, status=K.RETIRED)
    with pytest.raises(Conflict) as err:
        signing_services.retire_signing_key(key=key, actor=Actor.system("tests"))
    assert err.value.code == "already_retired"
