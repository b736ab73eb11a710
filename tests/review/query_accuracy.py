"""Query-count probes: review accuracy pages."""

from __future__ import annotations

PROBES: dict = {}
NOT_LISTS: dict[str, str] = {}
OTHER_LISTS: set[str] = set()
