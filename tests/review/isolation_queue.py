"""Isolation probes: review queue pages."""

from __future__ import annotations

CASES: dict = {}
