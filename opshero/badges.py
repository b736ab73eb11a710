"""How each status looks as a badge: its colour, and an icon or marker where one helps.

One table for every status badge of the shell, read by the ``status_badge`` template tag.
Like ``navigation``, it names the states of the apps above by value only and imports none
of them; a new status gets its colour here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Badge:
    colour: str  # a Tabler colour; the badge uses its light variant unless asked for solid
    label: str = ""  # empty: the page passes its own label
    icon: str = ""  # a Tabler icon name
    marker: str = ""  # "dot", "pulse" (an animated dot) or "spinner"


STATUS_BADGES: dict[str, dict[str, Badge]] = {
    # fleet: a device's connectivity (its lifecycle, with "active" split by last contact)
    "device": {
        "online": Badge("green", "Online", marker="pulse"),
        "offline": Badge("red", "Offline", marker="dot"),
        "provisioning": Badge("yellow", "Provisioning"),
        "revoked": Badge("orange", "Revoked", icon="key-off"),
        "retired": Badge("secondary", "Retired"),
    },
    # modelregistry: a model version and a validation run
    "version": {
        "uploaded": Badge("yellow", "Uploaded"),
        "validating": Badge("blue", "Validating", marker="spinner"),
        "validated": Badge("teal", "Validated"),
        "rejected": Badge("red", "Rejected"),
        "signed": Badge("green", "Signed", icon="rosette-discount-check"),
        "retired": Badge("secondary", "Retired"),
    },
    "run": {
        "queued": Badge("secondary", "queued"),
        "running": Badge("blue", "running", marker="spinner"),
        "needs_review": Badge("yellow", "needs review"),
        "passed": Badge("green", "passed"),
        "failed": Badge("red", "failed gates"),
        "error": Badge("red", "error"),
    },
    # roi: where inference runs (the planning pages pass their own labels)
    "placement": {
        "on_device": Badge("blue"),
        "near_edge": Badge("green"),
        "cloud": Badge("yellow"),
        "hybrid": Badge("purple"),
    },
}


def badge_for(kind: str, status: str) -> Badge:
    """The badge of ``status``; a value the table does not know is shown as it is, in grey."""
    return STATUS_BADGES[kind].get(status) or Badge("secondary", status)
