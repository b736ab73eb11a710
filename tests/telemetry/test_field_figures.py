"""Field figures for planning: evictions as counter rises, devices counted once each."""

from datetime import timedelta

import pytest

from telemetry import rollups, selectors
from tests.factories import enroll_device, make_site

from .builders import health, inference
from .test_rollups import HOUR, send

pytestmark = pytest.mark.django_db


def test_evictions_are_the_rise_of_each_device_counter_and_devices_count_once(
    client, world, queued
):
    site = make_site(world.a.org)
    devices = [enroll_device(world.a.org, site=site) for _ in range(2)]
    for index, gateway in enumerate(devices):
        # An hour before the window the counter already stood at 100; in the window it rises
        # to 105. Each device reports in a different hour of the window.
        events = [
            health(1, at=HOUR - timedelta(hours=1), evicted=100, online=True),
            health(2, at=HOUR + timedelta(hours=index, minutes=5), evicted=105, online=False),
            inference(3, at=HOUR + timedelta(hours=index, minutes=6)),
            inference(4, at=HOUR + timedelta(hours=index, minutes=7), time_to_action_ms=200.0),
        ]
        send(client, gateway, events)
    rollups.roll_up_marked()
    figure = selectors.field_offline_coverage(org=world.a.org, since=HOUR)
    # 2 inferences each were made offline and delivered; 5 events each were evicted.
    assert figure.value == pytest.approx(4 / (4 + 10))
    assert figure.device_count == 2
    latency = selectors.field_latency(org=world.a.org, since=HOUR)
    assert latency.count == 2 and latency.device_count == 2
    assert latency.value == pytest.approx(200.0, rel=0.01)
    # A window that starts after the first hour holds only the second device's hour.
    later = selectors.field_latency(org=world.a.org, since=HOUR + timedelta(minutes=30))
    assert later.count == 1 and later.window_start == HOUR + timedelta(hours=1)
