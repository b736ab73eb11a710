"""The planning vocabulary: the words every planning module shares.

Enums for the wizard's answers and the places compute runs, their plain-language labels, and
the one error type every planning form and endpoint maps to inline field errors. Pure Python
(no Django): ``roi.rules``, ``roi.engine``, ``roi.plan``, ``roi.scorecard`` and the presets
import it; ``roi.rules`` re-exports every name here so ``from roi.rules import X`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class PlanningInputError(ValueError):
    """Bad planning input: ``fields`` maps each field name to what is wrong with it.

    Shared by the wizard, the scorecard, the ROI engine and the plan, so every form and API
    endpoint turns it into the same inline field errors (``code`` mirrors the platform's
    ``invalid_input``; the Django layer maps it to a 422).
    """

    code = "invalid_input"

    def __init__(self, message: str, *, fields: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


def raise_for_field_errors(errors: Mapping[str, list[str]], *, what: str) -> None:
    """Raise :class:`PlanningInputError` when ``errors`` holds any field message."""
    errors = {name: list(messages) for name, messages in errors.items() if messages}
    if errors:
        count = len(errors)
        noun = "field needs" if count == 1 else "fields need"
        raise PlanningInputError(f"{what}: {count} {noun} attention.", fields=errors)


class Workflow(StrEnum):
    LOGISTICS_DOCK_VISION = "logistics_dock_vision"
    FIELD_SERVICE_TRIAGE = "field_service_triage"
    HEALTHCARE_DECISION_SUPPORT = "healthcare_decision_support"
    CUSTOM = "custom"


class PrivacyRisk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ModelComplexity(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class ExistingHardware(StrEnum):
    WINDOWS_NPU_FLEET = "windows_npu_fleet"
    PHONES_TABLETS = "phones_tablets"
    JETSON_CLASS = "jetson_class"
    SITE_GATEWAY = "site_gateway"  # a gateway or mini-PC at the site, without a GPU module
    NONE = "none"


class Tier(StrEnum):
    """A place where compute runs."""

    ON_DEVICE = "on_device"
    NEAR_EDGE = "near_edge"
    CLOUD = "cloud"


class Placement(StrEnum):
    """Where inference runs; ``hybrid`` splits inference between a local tier and the cloud."""

    ON_DEVICE = "on_device"
    NEAR_EDGE = "near_edge"
    CLOUD = "cloud"
    HYBRID = "hybrid"


LOCAL_TIERS = (Tier.ON_DEVICE, Tier.NEAR_EDGE)

TIER_LABELS = {Tier.ON_DEVICE: "on-device", Tier.NEAR_EDGE: "near-edge", Tier.CLOUD: "cloud"}
TIER_PLACES = {
    Tier.ON_DEVICE: "on the device",
    Tier.NEAR_EDGE: "on a near-edge gateway at the site",
    Tier.CLOUD: "in the cloud",
}
HARDWARE_LABELS = {
    ExistingHardware.WINDOWS_NPU_FLEET: "a Windows NPU fleet",
    ExistingHardware.PHONES_TABLETS: "phones or tablets",
    ExistingHardware.JETSON_CLASS: "Jetson-class boxes",
    ExistingHardware.SITE_GATEWAY: "site gateways",
    ExistingHardware.NONE: "no suitable hardware",
}

# Labels a form may offer for "how often will the model change"; stored as changes per year.
CHANGE_FREQUENCY_PER_YEAR: dict[str, float] = {
    "daily": 365.0,
    "weekly": 52.0,
    "biweekly": 26.0,
    "monthly": 12.0,
    "quarterly": 4.0,
    "half_yearly": 2.0,
    "yearly": 1.0,
    "never": 0.0,
}


# --- Plain-language labels for screens ------------------------------------------------------------
# Screens show these instead of raw keys (``near_edge``, ``phones_tablets``).

# Short labels for tables and choices; PLACEMENT_TITLES are the longer ones for prose.
PLACEMENT_LABELS: dict[str, str] = {
    Placement.ON_DEVICE.value: "On-device",
    Placement.NEAR_EDGE.value: "Near-edge",
    Placement.CLOUD.value: "Cloud",
    Placement.HYBRID.value: "Hybrid",
}
PLACEMENT_TITLES: dict[str, str] = {
    Placement.ON_DEVICE.value: "On-device",
    Placement.NEAR_EDGE.value: "Near-edge gateway",
    Placement.CLOUD.value: "Cloud",
    Placement.HYBRID.value: "Hybrid",
}
PRIVACY_LABELS: dict[str, str] = {
    PrivacyRisk.LOW.value: "low",
    PrivacyRisk.MEDIUM.value: "moderate",
    PrivacyRisk.HIGH.value: "high",
}
COMPLEXITY_LABELS: dict[str, str] = {
    ModelComplexity.SMALL.value: "small",
    ModelComplexity.MEDIUM.value: "medium",
    ModelComplexity.LARGE.value: "large",
}
WORKFLOW_LABELS: dict[str, str] = {
    Workflow.LOGISTICS_DOCK_VISION.value: "logistics dock vision",
    Workflow.FIELD_SERVICE_TRIAGE.value: "field service triage",
    Workflow.HEALTHCARE_DECISION_SUPPORT.value: "healthcare decision support",
    Workflow.CUSTOM.value: "a custom workflow",
}


__all__ = [
    "CHANGE_FREQUENCY_PER_YEAR",
    "COMPLEXITY_LABELS",
    "HARDWARE_LABELS",
    "LOCAL_TIERS",
    "PLACEMENT_LABELS",
    "PLACEMENT_TITLES",
    "PRIVACY_LABELS",
    "TIER_LABELS",
    "TIER_PLACES",
    "WORKFLOW_LABELS",
    "ExistingHardware",
    "ModelComplexity",
    "Placement",
    "PlanningInputError",
    "PrivacyRisk",
    "Tier",
    "Workflow",
    "raise_for_field_errors",
]
