"""Isolation probes: review data pages."""

from __future__ import annotations

CASES: dict = {}
