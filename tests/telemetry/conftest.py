import pytest

from telemetry import services
from tests.factories import enroll_device


@pytest.fixture
def queued(monkeypatch):
    """Record the ingest tasks the web process queues instead of sending them."""
    sent: list[str] = []

    def _record(batch_id: str) -> bool:
        sent.append(batch_id)
        return True

    monkeypatch.setattr(services, "enqueue_ingest", _record)
    return sent


@pytest.fixture
def gateway(world):
    return enroll_device(world.a.org)
