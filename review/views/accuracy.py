"""Review pages: accuracy (placeholder until built)."""

from __future__ import annotations

urlpatterns: list = []
