"""Maintenance windows: when a site accepts a change, in its own time zone. Pure, no Django.

A window is ``{"day": 0-6 (Monday = 0), "start": "HH:MM", "end": "HH:MM"}`` in the site's
local time; an end at or before the start runs past midnight into the next day
("Sat 22:00-02:00" is open Saturday 22:00 to Sunday 02:00 local). A site with no windows
accepts changes at any time. Local time follows the zone's daylight-saving rules, so a
window keeps its wall-clock hours across a DST change.

Daylight saving: the window's ends are turned into instants (local wall time → UTC) and
``now`` is compared with those instants, never as wall-clock times. A window edge that falls in
the hour skipped in spring counts as the instant with the offset before the change (02:00 in
Europe/Berlin on the last Sunday of March is 03:00 CEST), so a window inside the gap still
opens for its length; in autumn an edge in the repeated hour is its first occurrence, so a
window across the change is open an hour longer in absolute time, covering every wall-clock
minute it names.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def window_open(windows: Sequence[dict], time_zone: str, now: datetime) -> bool:
    """True when ``now`` (aware) falls inside one of ``windows`` at the site's local time."""
    if not windows:
        return True
    local = now.astimezone(zoneinfo.ZoneInfo(time_zone or "UTC"))
    for window in windows:
        start, end = _clock(window["start"]), _clock(window["end"])
        day = int(window["day"])
        for offset in (0, 1):  # a window that began yesterday may still be open
            opened = (local - timedelta(days=offset)).date()
            if opened.weekday() != day:
                continue
            begin = datetime.combine(opened, start, tzinfo=local.tzinfo).astimezone(UTC)
            finish_day = opened if end > start else opened + timedelta(days=1)
            finish = datetime.combine(finish_day, end, tzinfo=local.tzinfo).astimezone(UTC)
            if begin <= now.astimezone(UTC) < finish:
                return True
    return False


def next_opening(windows: Sequence[dict], time_zone: str, now: datetime) -> datetime | None:
    """When the site's next window opens (``now`` if one is open; None with no windows)."""
    if not windows:
        return None
    if window_open(windows, time_zone, now):
        return now
    zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    local = now.astimezone(zone)
    best: datetime | None = None
    for window in windows:
        start = _clock(window["start"])
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() != int(window["day"]):
                continue
            begin = datetime.combine(day, start, tzinfo=zone)
            if begin > local and (best is None or begin < best):
                best = begin
    return best
