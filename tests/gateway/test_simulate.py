"""``opshero-gateway simulate`` against the real server (pytest-django's live server and a real
Celery worker ingesting): simulated gateways install the signed baseline after verifying it,
post inference and health telemetry, and the server stores exactly what each one queued; an
outage queues events locally that arrive once the link is back, none lost or doubled; a
version the scenario marks bad is refused with ``health_check_failed`` while the baseline
keeps serving."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import transaction

from fleet import services as fleet_services
from gateway import cli
from gateway.loadgen import FleetDevice, FleetFile
from gateway.simulate import (
    SimOptions,
    Simulation,
    assign_scenarios,
    parse_scenario,
    plan,
)
from modelregistry import assignment_services
from opshero.actors import Actor
from telemetry.models import HealthEvent, InferenceEvent
from telemetry.routers import telemetry_db
from tests.factories import enroll_device
from tests.rollouts.fleet import RUNTIME, build

pytestmark = [pytest.mark.django_db(transaction=True)]
MIN_POLL_S = 15  # the policy's smallest desired_poll_interval_s


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def fleet(world, live_server, settings, tmp_path):
    """fleet(n) -> (RolloutWorld, devices, FleetFile): n enrolled gateways with the baseline."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def _make(count: int):
        with transaction.atomic():
            w = build(world, sites=1, per_site=0)
            enrolled = [enroll_device(w.org, site=w.sites[0]) for _ in range(count)]
            for device, _ in enrolled:
                device.hardware_target = w.target
                device.runtime_version = RUNTIME
                device.save()
            fleet_services.set_operating_policy(
                organization=w.org,
                actor=w.admin,
                site=w.sites[0],
                desired_poll_interval_s=MIN_POLL_S,
                telemetry_interval_s=10,  # the policy's minimum: partial batches wait 10 s
            )
            assignment_services.assign_version(
                organization=w.org,
                model=w.model,
                version=w.baseline,
                device_ids=[device.pk for device, _ in enrolled],
                actor=Actor.system("tests"),
            )
        file = FleetFile(
            server=live_server.url,
            devices=tuple(
                FleetDevice(device_id=str(d.uid), private_key_pem=_pem(k)) for d, k in enrolled
            ),
        )
        return w, [d for d, _ in enrolled], file

    return _make


class Running:
    """A simulation on a thread of its own, so the test can watch it and change the server."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.summary = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.summary = asyncio.run(self.simulation.run())
        except BaseException as exc:  # noqa: BLE001 - stop() and wait_for() raise it
            self.error = exc

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            if len(self.simulation.gateways) == len(self.simulation.specs) and condition():
                return
            time.sleep(0.25)
        pytest.fail(f"timed out waiting for {what}")

    def stop(self) -> dict:
        self.simulation.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        assert self.error is None, self.error
        return self.summary


def _simulation(file: FleetFile, state_root, scenarios=(), **options) -> Simulation:
    options = SimOptions(
        **{
            "inferences_per_minute": 120,
            "health_interval_s": 2,
            "min_poll_interval_s": 1,
            "batch_size": 50,
            "seed": 7,
            **options,
        }
    )
    specs = plan(file, scenarios, seed=options.seed, started=datetime.now(UTC))
    return Simulation(file.server, specs, state_root=state_root, options=options)


def _stored(device) -> list[tuple[int, int]]:
    db = telemetry_db()
    return sorted(
        list(
            InferenceEvent.objects.using(db)
            .filter(device_id=device.pk)
            .values_list("epoch_id", "sequence")
        )
        + list(
            HealthEvent.objects.using(db)
            .filter(device_id=device.pk)
            .values_list("epoch_id", "sequence")
        )
    )


def _still_queued(state_dir) -> set[int]:
    with sqlite3.connect(state_dir / "queue.sqlite3") as db:
        return {seq for (seq,) in db.execute("SELECT seq FROM events")}


def _assert_server_holds_exactly_what_was_sent(gateway, device) -> None:
    """Every sequence the gateway numbered is stored once on the server or still queued."""
    counts = gateway.report()
    deadline = time.monotonic() + 30
    while len(_stored(device)) < counts["sent"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker ingests landed batches asynchronously
    stored = _stored(device)
    epochs = {epoch for epoch, _ in stored}
    assert len(epochs) == 1  # one agent installation
    sequences = [sequence for _, sequence in stored]
    assert len(sequences) == len(set(sequences)) == counts["sent"]  # none doubled
    queued = _still_queued(gateway.agent.state_dir)
    assert len(queued) == counts["queued"]
    numbered = counts["enqueued"]
    assert numbered > 0
    assert set(sequences) | queued == set(range(numbered))  # none lost
    assert not set(sequences) & queued


def test_scenarios_parse_and_fractions_are_chosen_by_the_seed():
    spec = parse_scenario("outage:0.05:0.2@0.5")
    assert (spec.name, spec.args, spec.fraction) == ("outage", ("0.05", "0.2"), 0.5)
    assert parse_scenario("throttle:0.5-1").args == ("0.5-1",)
    assert parse_scenario("slow-version:1.1.0:2.5").args == ("1.1.0", "2.5")
    for bad in ("outage:1", "drift", "bad-version", "throttle:2-1", "nope", "drift:1@2"):
        with pytest.raises(ValueError):
            parse_scenario(bad)
    ids = [f"d{i}" for i in range(10)]
    half = parse_scenario("drift:1@0.3")
    first = assign_scenarios(ids, [half], seed=1)
    assert sum(bool(s) for s in first.values()) == 3
    assert first == assign_scenarios(ids, [half], seed=1)
    assert first != assign_scenarios(ids, [half], seed=2)


def test_three_gateways_install_the_baseline_and_the_server_stores_what_they_queued(
    fleet, tmp_path, celery_worker
):
    w, devices, file = fleet(3)
    running = Running(_simulation(file, tmp_path / "state"))

    def telemetry_flows() -> bool:
        return all(
            g.counts.installs >= 1 and g.counts.health >= 3 and g.report()["sent"] >= 20
            for g in running.simulation.gateways
        )

    running.wait_for(telemetry_flows, 60, "every gateway installing and sending telemetry")
    summary = running.stop()

    assert summary["gateways"] == 3 and summary["installs"] == 3
    assert summary["refusals"] == {} and summary["step_errors"] == 0
    assert summary["inferences"] >= 30 and summary["network_errors"] == 0
    for gateway, device in zip(running.simulation.gateways, devices, strict=True):
        installed = json.loads((gateway.agent.state_dir / "installed.json").read_text())
        (record,) = installed.values()
        assert record["current"]["version"] == "1.0.0"
        assert record["current"]["sha256"] == w.baseline.sha256
        device.refresh_from_db()
        assert "dock damage@1.0.0" in device.reported_model_version
        _assert_server_holds_exactly_what_was_sent(gateway, device)
        db = telemetry_db()
        assert (
            InferenceEvent.objects.using(db)
            .filter(device_id=device.pk, model_version="1.0.0", model_sha256=w.baseline.sha256)
            .exists()
        )
        assert HealthEvent.objects.using(db).filter(device_id=device.pk).count() >= 3


def test_an_outage_queues_events_that_arrive_afterwards_none_lost_none_doubled(
    fleet, tmp_path, celery_worker
):
    _, (device,), file = fleet(1)
    # Cut from 3 s to 21 s after the start: longer than the 10 s telemetry interval, so the
    # sender tries (and fails) during the cut.
    running = Running(_simulation(file, tmp_path / "state", [parse_scenario("outage:0.05:0.3")]))
    (outage,) = running.simulation.specs[0].outages
    cut_ends = outage.start + outage.duration

    def recovered() -> bool:
        (gateway,) = running.simulation.gateways
        _, oldest = gateway.agent.queue.head()
        return (
            datetime.now(UTC) > cut_ends + timedelta(seconds=1)
            and gateway.link.network_errors > 0
            # Everything queued during the cut has gone (what is left is younger).
            and (oldest is None or oldest > cut_ends.timestamp())
        )

    running.wait_for(recovered, 90, "the queue to drain after the outage")
    summary = running.stop()
    assert summary["network_errors"] >= 1 and summary["installs"] == 1
    (gateway,) = running.simulation.gateways
    _assert_server_holds_exactly_what_was_sent(gateway, device)
    db = telemetry_db()
    during = InferenceEvent.objects.using(db).filter(
        device_id=device.pk,
        timestamp__gte=outage.start + timedelta(seconds=0.5),
        timestamp__lt=cut_ends - timedelta(seconds=0.5),
    )
    assert during.count() >= 3  # made while the link was cut, stored after it came back
    offline = HealthEvent.objects.using(db).filter(device_id=device.pk, online=False)
    assert offline.exists()  # health recorded during the cut says so
    assert max(offline.values_list("buffered", flat=True)) >= 1


def test_a_version_the_scenario_marks_bad_is_refused_and_the_baseline_keeps_serving(
    fleet, tmp_path
):
    w, (device,), file = fleet(1)
    running = Running(_simulation(file, tmp_path / "state", [parse_scenario("bad-version:1.1.0")]))

    def baseline_serves() -> bool:
        (gateway,) = running.simulation.gateways
        return gateway.counts.installs == 1 and gateway.counts.inferences > 0

    running.wait_for(baseline_serves, 30, "the baseline to serve")
    with transaction.atomic():
        assignment_services.assign_version(
            organization=w.org,
            model=w.model,
            version=w.candidate,
            device_ids=[device.pk],
            actor=Actor.system("tests"),
        )
    (gateway,) = running.simulation.gateways
    running.wait_for(lambda: gateway.agent.refused, MIN_POLL_S * 3, "the refusal")
    served_before = gateway.counts.inferences
    running.wait_for(
        lambda: gateway.counts.inferences > served_before + 2, 10, "serving after the refusal"
    )
    summary = running.stop()
    assert list(gateway.agent.refused.values()) == ["health_check_failed"]
    assert summary["refusals"] == {"health_check_failed": 1}
    (serving,) = gateway.agent.serving.values()
    assert (serving.item.version, serving.item.sha256) == ("1.0.0", w.baseline.sha256)
    installed = json.loads((gateway.agent.state_dir / "installed.json").read_text())
    assert [r["current"]["version"] for r in installed.values()] == ["1.0.0"]
    assert summary["installs"] == 1  # the bad version never served


def test_the_cli_runs_a_short_simulation_and_prints_a_json_summary(fleet, tmp_path, capsys):
    _, _, file = fleet(2)
    file.write(tmp_path / "fleet.json")
    code = cli.main(
        [
            "simulate",
            "--fleet",
            str(tmp_path / "fleet.json"),
            "--state-root",
            str(tmp_path / "state"),
            "--duration",
            "6",
            "--poll-interval",
            "1",
            "--health-interval",
            "2",
            "--scenario",
            "drift:0@0.5",
            "--scenario",
            "throttle:0-0.01",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    summary = lines[-1]
    assert summary["gateways"] == 2 and summary["installs"] == 2
    assert summary["enqueued"] >= 2 and summary["sent"] + summary["queued"] == summary["enqueued"]
    assert summary["refusals"] == {} and summary["network_errors"] == 0
    assert len(summary["cpu_s"]) == 1 and summary["cpu_s"][0] > 0
    for device in file.devices:
        assert (tmp_path / "state" / device.device_id / "queue.sqlite3").exists()


def test_throttle_and_drift_bend_the_probe_and_the_serving_runner(tmp_path, unreachable_url):
    from types import SimpleNamespace

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.agent import Serving
    from gateway.runner import SyntheticRunner
    from gateway.simulate import SimulatedGateway, gateway_spec

    key = Ed25519PrivateKey.generate()
    device = FleetDevice(device_id="gw-1", private_key_pem=_pem(key))
    started = datetime.now(UTC)
    scenarios = [parse_scenario("throttle:0-0"), parse_scenario("drift:0")]
    spec = gateway_spec(device, scenarios, seed=3, started=started - timedelta(seconds=1))
    gateway = SimulatedGateway(
        spec, server=unreachable_url, state_root=tmp_path, options=SimOptions()
    )
    runner = SyntheticRunner(SimpleNamespace(io_contract=None), spec.profile("1.0.0"), seed=1)
    gateway.agent.serving["m"] = Serving(item=None, runner=runner, manifest_ref=None)
    calm = SyntheticRunner(SimpleNamespace(io_contract=None), spec.profile("1.0.0"), seed=1)
    gateway._apply_scenarios(time.time())
    assert runner.extra_latency_factor == 1.8 and runner.drift == (5.0, 0.15)
    assert runner.predict().latency_ms == pytest.approx(calm.predict().latency_ms * 1.8, rel=1e-3)
    hot = gateway.probe.read()
    assert hot.throttled is True and hot.temperature_c > 24.0 + 20.0 + 25.0 - 5.0
    gateway._apply_scenarios(time.time() + 11 * 60)  # the 10-minute episode is over; drift stays
    assert runner.extra_latency_factor == 1.0 and runner.drift == (5.0, 0.15)
    assert spec.profile("2.0.0").fails_health_check is False
    gateway.close()
