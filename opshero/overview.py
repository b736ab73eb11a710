"""KPI cards on the Overview page, contributed by the apps that own the figures.

The platform cannot import the apps above it, so each app registers a provider in its
``AppConfig.ready``; the Overview shows whatever the installed apps provide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .models import Organization


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    detail: str = ""
    url: str = ""
    icon: str = "chart-bar"


KpiProvider = Callable[[Organization], list[Kpi]]
_PROVIDERS: list[KpiProvider] = []


def register(provider: KpiProvider) -> KpiProvider:
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def kpis_for(org: Organization) -> list[Kpi]:
    return [kpi for provider in _PROVIDERS for kpi in provider(org)]
