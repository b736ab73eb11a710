"""Small presentation filters used across OpsHero templates."""

from django import template

register = template.Library()


@register.filter
def initials(user) -> str:
    """Two letters for an avatar: first and last name, else the username's first letter."""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    if first or last:
        return (first[:1] + last[:1]).upper()
    name = user.get_username() if hasattr(user, "get_username") else str(user)
    return name[:1].upper()
