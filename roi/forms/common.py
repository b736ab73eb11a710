"""What the planning forms share: where a field's inline errors are shown."""

from __future__ import annotations

from dataclasses import dataclass

# --- Inline errors that do not re-render inputs -----------------------------------------------


def slot_id(name: str) -> str:
    """The id of the element that shows a field's errors (dots are awkward in selectors)."""
    return "err-" + name.replace(".", "-").replace("[", "-").replace("]", "")


@dataclass
class ErrorSlot:
    id: str
    errors: list[str]
