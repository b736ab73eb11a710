"""Isolation probes: review accuracy pages."""

from __future__ import annotations

CASES: dict = {}
