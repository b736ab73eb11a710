"""Template context shared by every page: the current organisation, switcher and menu."""

from __future__ import annotations

from .navigation import navigation_for
from .selectors import memberships_for_user


def shell(request) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None or not request.user.is_authenticated:
        return {}
    org = membership.organization
    return {
        "org": org,
        "membership": membership,
        "my_memberships": memberships_for_user(user=request.user),
        "navigation": navigation_for(org_slug=org.slug, membership=membership, path=request.path),
    }
