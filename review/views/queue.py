"""Review pages: queue (placeholder until built)."""

from __future__ import annotations

urlpatterns: list = []
