"""The main navigation: one list, shown in the sidebar of every organisation page.

An entry whose page is not part of this installation yet is shown greyed out with a
note, rather than linking to an empty page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from .roles import Action


@dataclass(frozen=True)
class NavItem:
    label: str
    icon: str  # Tabler icon name
    url_name: str
    section: str  # first path segment after /o/<org>/ that marks the item active
    action: Action = Action.VIEW


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Overview", "layout-dashboard", "overview", ""),
    NavItem("Plan", "compass", "roi:home", "plan"),
    NavItem("Fleet", "router", "fleet:devices", "fleet"),
    NavItem("Models", "cpu", "modelregistry:models", "models"),
    NavItem("Rollouts", "rocket", "rollouts:list", "rollouts"),
    NavItem("Fleet health", "heart-rate-monitor", "telemetry:health", "health"),
    NavItem("Alerts", "alert-triangle", "telemetry:alerts", "alerts"),
    NavItem("Review", "checklist", "review:queue", "review", Action.REVIEW_EVIDENCE),
    NavItem("Telemetry", "activity-heartbeat", "telemetry:ingest", "telemetry"),
    NavItem("Audit", "list-search", "audit", "audit", Action.VIEW_AUDIT),
)


def navigation_for(*, org_slug: str, membership, path: str) -> list[dict]:
    """Entries for the sidebar with their URL (None when not built yet) and active state."""
    prefix = f"/o/{org_slug}/"
    rest = path[len(prefix) :] if path.startswith(prefix) else ""
    current = rest.split("/", 1)[0]
    items = []
    for item in NAVIGATION:
        if not membership.can(item.action):
            continue
        try:
            url = reverse(item.url_name, kwargs={"org": org_slug})
        except NoReverseMatch:
            url = None
        items.append(
            {
                "label": item.label,
                "icon": item.icon,
                "url": url,
                "active": url is not None and current == item.section,
            }
        )
    return items
