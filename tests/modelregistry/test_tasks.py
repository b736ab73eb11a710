"""The registry's Celery tasks: names, routes, and the old names kept for one release."""

from __future__ import annotations

from django.conf import settings

from opshero.celery import app


def _route(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name)
    return route["queue"].name


def test_validation_runs_on_the_validation_queue_under_the_new_and_the_old_name():
    import modelregistry.tasks  # noqa: F401 - registers the tasks

    for name in ("modelregistry.validate_model_version", "fleet.validate_model_version"):
        assert name in app.tasks, name
        assert _route(name) == "validation"
    assert _route("modelregistry.fail_stale_validation_runs") == "default"
    assert "fleet.fail_stale_validation_runs" in app.tasks


def test_queued_messages_under_the_old_name_run_the_same_service(monkeypatch):
    import modelregistry.tasks as tasks

    seen = []

    class Run:
        status = "passed"

    def fake_execute(*, run_id):
        seen.append(run_id)
        return Run()

    monkeypatch.setattr(tasks, "execute_validation_run", fake_execute)
    assert app.tasks["fleet.validate_model_version"].run(41) == "passed"
    assert app.tasks["modelregistry.validate_model_version"].run(42) == "passed"
    assert seen == [41, 42]


def test_beat_schedules_the_registry_task_by_its_new_name():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "modelregistry.fail_stale_validation_runs" in tasks
    assert "fleet.fail_stale_validation_runs" not in tasks


def test_beat_deletes_superseded_variant_files_hourly_on_the_default_queue():
    import modelregistry.tasks  # noqa: F401 - registers the tasks

    (entry,) = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "modelregistry.delete_superseded_variant_files"
    ]
    assert entry["schedule"] == 3600
    assert "modelregistry.delete_superseded_variant_files" in app.tasks
    assert _route("modelregistry.delete_superseded_variant_files") == "default"


def test_the_cleanup_task_runs_the_cleanup_service(monkeypatch):
    import modelregistry.tasks as tasks

    calls = []

    def fake_cleanup(**kwargs):
        calls.append(kwargs)
        return 3

    monkeypatch.setattr(tasks, "_delete_superseded_variant_files", fake_cleanup)
    assert app.tasks["modelregistry.delete_superseded_variant_files"].run() == 3
    assert calls == [{}]
