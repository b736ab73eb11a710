"""/healthz and /readyz, the latter with a real worker consuming the ping task."""

import pytest


def test_healthz_is_always_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_readyz_reports_database_broker_and_a_live_worker(client, celery_worker):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "worker": "ok",
    }
    assert body["checks"]["worker"]["worker"]  # host:pid of the worker that answered
    for check in body["checks"].values():
        assert check["ms"] >= 0


@pytest.mark.django_db(transaction=True)
def test_readyz_without_a_worker_is_503_and_names_the_failing_check(client, settings):
    from opshero.celery import app

    settings.READINESS_WORKER_TIMEOUT = 1.0
    app.control.purge()
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "ok"
    assert body["checks"]["worker"]["status"] == "fail"
    assert "Timeout" in body["checks"]["worker"]["error"]
    app.control.purge()


@pytest.mark.django_db
def test_readyz_with_an_unreachable_broker_is_503(client, settings):
    from opshero.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        body = client.get("/readyz").json()
    finally:
        app.conf.broker_url = previous
    assert body["status"] == "fail"
    assert body["checks"]["broker"]["status"] == "fail"
    assert body["checks"]["worker"]["error"] == "broker unreachable"
