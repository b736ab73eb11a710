"""Architecture decision wizard: where should inference run, and why.

The seed's decision rule asks four questions (latency tolerance, offline connectivity, privacy
risk, model change frequency); the wizard adds the facts that pick between on-device and
near-edge (devices per site, model complexity, existing hardware, payload). The answer is:

- a **placement**, named after where *inference* runs: ``on_device``, ``near_edge``, ``cloud``,
  or ``hybrid`` when inference itself is split between a local tier and the cloud (local for
  speed/offline/privacy, cloud for the heavy or fast-changing part). Every answer also lists the
  cloud's non-inference role (training, orchestration, monitoring: "Hybrid is usually the
  answer" in the seed) as a :class:`PlacementPart`, so "which part runs where" is always
  explicit; optional local helpers (on-device quick checks, a near-edge fallback) are parts too
  and do not by themselves make the placement hybrid. This naming maps one to one onto the four
  placements the ROI engine costs (``roi.engine``).
- the rule behind each part of the answer, in plain words, with the seed's reasoning;
- the matching reference architecture (the seed's three patterns, or a generic one);
- risks, and "what would change this answer": the nearest thresholds that flip the placement,
  found by re-running the rules on the answers with one value moved across a threshold.

The workflow weighs in through its reference architecture (one point each, never a veto):
healthcare decision support counts as a privacy concern for local inference, field service
favours local and on-device inference for offline work, the logistics dock favours local
inference on a near-edge gateway. Equal points between local and cloud go local when a privacy
concern is among the local reasons (cloud inference needs governance that allows sending inputs),
local when connectivity needs a local path anyway, and otherwise to the cloud; each tie-break
says which case it was. A rule that fired but lost to a stronger one is reported with
``overridden_by`` and is never cited as a reason for a part of the answer. Each rule's ``source``
credits the seed (the "playbook") only with what it says; thresholds it does not give are
labelled OpsHero defaults.

Rules are versioned data (:data:`RULESET_VERSION`, :data:`RULES`, :data:`THRESHOLDS`), not
scattered ifs: a saved result records the version it was decided under. Change a threshold or a
rule and bump the version.

Boundary conventions (exact, and tested):

- latency is *tight* when ``latency_tolerance_ms < 200`` (strictly less, the seed's "<200ms"):
  199 ms is tight, 200 ms and 201 ms are not;
- latency is *very tight* when ``< 50`` ms (OpsHero default: a LAN hop to a shared gateway
  plus queueing eats a real share of such a budget, so on-device is favoured);
- connectivity is *intermittent* when ``offline_share >= 0.01`` (about 7 hours a month) or the
  longest outage is ``>= 1`` hour: at least partial local inference is required;
- connectivity is *frequently offline* when ``offline_share >= 0.10`` (about 3 days a month):
  local inference must be primary;
- privacy risk ``high`` or PHI involved forces local inference and forbids sending raw inputs to
  cloud inference, whatever the other answers; PHI with privacy answered ``low`` is treated as
  high and reported as a risk;
- model change is *frequent* at ``>= 12`` changes a year (monthly or more often) and *slow* at
  ``<= 4`` (quarterly or less often);
- a *shared site* has ``>= 2`` devices; the site's upload is *heavy* at ``>= 5`` Mbit/s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from roi.vocabulary import (
    CHANGE_FREQUENCY_PER_YEAR,
    COMPLEXITY_LABELS,
    HARDWARE_LABELS,
    LOCAL_TIERS,
    PRIVACY_LABELS,
    TIER_LABELS,
    TIER_PLACES,
    WORKFLOW_LABELS,
    ExistingHardware,
    ModelComplexity,
    Placement,
    PlanningInputError,
    PrivacyRisk,
    Tier,
    Workflow,
    raise_for_field_errors,
)

RULESET_VERSION = "2026.2"

# Where a rule comes from, as shown next to it. Only what the seed (the "playbook") says is
# credited to it; a number the seed does not give is an OpsHero default and is labelled so.
SOURCE_PLAYBOOK = "Playbook"
SOURCE_PLAYBOOK_PATTERN = "Playbook reference architecture"
SOURCE_OPSHERO = "OpsHero default"


def _playbook_rule_opshero_threshold(threshold: str) -> str:
    return f"Playbook rule; the threshold ({threshold}) is an OpsHero default"


# --- Answers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumericAnswerSpec:
    """Label, unit and sane range of a numeric answer; ``resolution`` is the smallest step a
    person would type, used to step just across a threshold in "what would change"."""

    label: str
    unit: str
    minimum: float
    maximum: float
    resolution: float
    integer: bool = False


NUMERIC_ANSWERS: dict[str, NumericAnswerSpec] = {
    "latency_tolerance_ms": NumericAnswerSpec("latency tolerance", "ms", 1, 86_400_000, 1),
    "offline_share": NumericAnswerSpec("share of time offline or intermittent", "%", 0, 1, 0.001),
    "longest_outage_hours": NumericAnswerSpec("longest outage", "h", 0, 8_760, 0.1),
    "model_changes_per_year": NumericAnswerSpec("model changes", "per year", 0, 8_760, 1),
    "devices_per_site": NumericAnswerSpec("devices per site", "", 1, 10_000, 1, integer=True),
    "sites": NumericAnswerSpec("sites", "", 1, 100_000, 1, integer=True),
    "payload_kb": NumericAnswerSpec("payload size", "KB", 0, 1_000_000, 0.1),
    "inferences_per_device_per_minute": NumericAnswerSpec(
        "inferences per device per minute", "/min", 0, 60_000, 0.1
    ),
}

REQUIRED_ANSWERS = (
    "workflow",
    "latency_tolerance_ms",
    "offline_share",
    "privacy_risk",
    "model_changes_per_year",
)


@dataclass(frozen=True, kw_only=True)
class WizardAnswers:
    """The wizard's questions: the seed's four plus the facts that pick a local tier.

    ``offline_share`` is the share of operating time with no or intermittent connectivity
    (0..1). ``model_changes_per_year`` accepts a label from :data:`CHANGE_FREQUENCY_PER_YEAR`
    in :meth:`from_dict`. Payload size and rate are per inference and per device.
    """

    workflow: Workflow
    latency_tolerance_ms: float
    offline_share: float
    privacy_risk: PrivacyRisk
    model_changes_per_year: float
    longest_outage_hours: float = 0.0
    phi_involved: bool = False
    devices_per_site: int = 1
    sites: int = 1
    payload_kb: float = 0.0
    inferences_per_device_per_minute: float = 0.0
    model_complexity: ModelComplexity = ModelComplexity.MEDIUM
    existing_hardware: tuple[ExistingHardware, ...] = ()

    @property
    def site_upload_mbps(self) -> float:
        """Raw payload a site would send if every inference went to the cloud (Mbit/s)."""
        kilobits_per_minute = (
            self.devices_per_site * self.inferences_per_device_per_minute * self.payload_kb * 8
        )
        return kilobits_per_minute / 60 / 1000

    @property
    def hardware(self) -> frozenset[ExistingHardware]:
        """Existing hardware without the ``none`` marker."""
        return frozenset(self.existing_hardware) - {ExistingHardware.NONE}

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": str(self.workflow),
            "latency_tolerance_ms": self.latency_tolerance_ms,
            "offline_share": self.offline_share,
            "longest_outage_hours": self.longest_outage_hours,
            "privacy_risk": str(self.privacy_risk),
            "phi_involved": self.phi_involved,
            "model_changes_per_year": self.model_changes_per_year,
            "devices_per_site": self.devices_per_site,
            "sites": self.sites,
            "payload_kb": self.payload_kb,
            "inferences_per_device_per_minute": self.inferences_per_device_per_minute,
            "model_complexity": str(self.model_complexity),
            "existing_hardware": [str(item) for item in self.existing_hardware],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WizardAnswers:
        """Parse stored or posted answers; every problem is reported per field at once."""
        if not isinstance(data, Mapping):
            raise PlanningInputError(
                "answers must be an object.", fields={"answers": ["Not an object."]}
            )
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}

        def blank(value: Any) -> bool:
            return value is None or (isinstance(value, str) and not value.strip())

        # Changes per year may arrive as a number or as a label such as "monthly".
        raw_changes = data.get("model_changes_per_year")
        if blank(raw_changes):
            raw_changes = data.get("model_change_frequency")

        for name in REQUIRED_ANSWERS:
            value = raw_changes if name == "model_changes_per_year" else data.get(name)
            if blank(value):
                errors.setdefault(name, []).append("This answer is required.")

        for name, enum in (
            ("workflow", Workflow),
            ("privacy_risk", PrivacyRisk),
            ("model_complexity", ModelComplexity),
        ):
            if not blank(data.get(name)):
                parsed = _parse_choice(data[name], enum)
                if parsed is None:
                    choices = ", ".join(item.value for item in enum)
                    errors.setdefault(name, []).append(f"Choose one of: {choices}.")
                else:
                    values[name] = parsed

        if not blank(raw_changes):
            label = str(raw_changes).strip().lower()
            number = CHANGE_FREQUENCY_PER_YEAR.get(label, _parse_number(raw_changes))
            if number is None:
                labels = ", ".join(CHANGE_FREQUENCY_PER_YEAR)
                errors.setdefault("model_changes_per_year", []).append(
                    f"Enter changes per year or one of: {labels}."
                )
            else:
                values["model_changes_per_year"] = number

        for name in NUMERIC_ANSWERS:
            if name == "model_changes_per_year" or blank(data.get(name)):
                continue
            number = _parse_number(data[name])
            if number is None:
                errors.setdefault(name, []).append("Enter a number.")
            else:
                values[name] = number

        if "phi_involved" in data and data["phi_involved"] is not None:
            flag = _parse_bool(data["phi_involved"])
            if flag is None:
                errors.setdefault("phi_involved", []).append("Answer yes or no.")
            else:
                values["phi_involved"] = flag

        hardware = data.get("existing_hardware")
        if hardware is not None:
            items = [hardware] if isinstance(hardware, str) else hardware
            parsed_items: list[ExistingHardware] = []
            if not isinstance(items, Sequence):
                items = [items]
            for item in items:
                choice = _parse_choice(item, ExistingHardware)
                if choice is None:
                    choices = ", ".join(item.value for item in ExistingHardware)
                    errors.setdefault("existing_hardware", []).append(
                        f"Unknown hardware {item!r}; choose from: {choices}."
                    )
                elif choice not in parsed_items:
                    parsed_items.append(choice)
            values["existing_hardware"] = tuple(parsed_items)

        raise_for_field_errors(errors, what="Wizard answers")
        for name in ("devices_per_site", "sites"):
            if name in values and float(values[name]).is_integer():
                values[name] = int(values[name])
        answers = cls(**values)
        validate_answers(answers=answers)
        return answers


_Choice = TypeVar("_Choice", bound=StrEnum)


def _parse_choice(value: Any, enum: type[_Choice]) -> _Choice | None:
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        return None


def _parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None  # True is not 1 site
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "on"}:
        return True
    if text in {"false", "no", "0", "off"}:
        return False
    return None


def validate_answers(*, answers: WizardAnswers) -> None:
    """Check ranges and consistency; raise :class:`PlanningInputError` naming each field."""
    errors: dict[str, list[str]] = {}
    for name, spec in NUMERIC_ANSWERS.items():
        value = getattr(answers, name)
        problems = errors.setdefault(name, [])
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append("Enter a number.")
            continue
        if not math.isfinite(value):
            problems.append("Enter a finite number.")
        elif value < spec.minimum:
            problems.append(f"Must be at least {_plain(spec.minimum)}.")
        elif value > spec.maximum:
            problems.append(
                f"{_plain(value)} is beyond the plausible maximum of {_plain(spec.maximum)}."
            )
        elif spec.integer and not float(value).is_integer():
            problems.append("Enter a whole number.")
    for name, enum in (
        ("workflow", Workflow),
        ("privacy_risk", PrivacyRisk),
        ("model_complexity", ModelComplexity),
    ):
        if not isinstance(getattr(answers, name), enum):
            errors.setdefault(name, []).append("Choose one of the listed answers.")
    if not isinstance(answers.phi_involved, bool):
        errors.setdefault("phi_involved", []).append("Answer yes or no.")
    hardware = answers.existing_hardware
    if not all(isinstance(item, ExistingHardware) for item in hardware):
        errors.setdefault("existing_hardware", []).append("Choose from the listed hardware.")
    elif ExistingHardware.NONE in hardware and len(hardware) > 1:
        errors.setdefault("existing_hardware", []).append(
            "'none' cannot be combined with other hardware."
        )
    raise_for_field_errors(errors, what="Wizard answers")


def _plain(value: float) -> str:
    """A number as a person would write it (no trailing .0, thousands separated)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


# --- Rules as data ------------------------------------------------------------------------------


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GE = ">="
    GT = ">"
    EQ = "=="
    IN = "in"
    HAS = "has"  # a collection fact contains the value


@dataclass(frozen=True)
class Condition:
    """One comparison of a fact (an answer or a derived quantity) with a threshold."""

    fact: str
    op: Op
    value: float | str | bool | tuple[str, ...]

    def holds(self, facts: Mapping[str, Any]) -> bool:
        actual = facts[self.fact]
        match self.op:
            case Op.LT:
                return actual < self.value
            case Op.LE:
                return actual <= self.value
            case Op.GE:
                return actual >= self.value
            case Op.GT:
                return actual > self.value
            case Op.EQ:
                return actual == self.value
            case Op.IN:
                return actual in self.value  # type: ignore[operator]
            case Op.HAS:
                return self.value in actual
        raise AssertionError(self.op)  # pragma: no cover - exhaustive match

    def describe(self, facts: Mapping[str, Any]) -> str:
        """The comparison with today's value, e.g. ``latency tolerance 150 ms < 200 ms``."""
        actual = facts[self.fact]
        label, unit = FACT_LABELS.get(self.fact, (self.fact.replace("_", " "), ""))
        if self.op in (Op.LT, Op.LE, Op.GE, Op.GT):
            return (
                f"{label} {_with_unit(actual, unit)} {self.op.value} "
                f"{_with_unit(self.value, unit)}"  # type: ignore[arg-type]
            )
        if self.op is Op.HAS:
            return f"{label} include {_fact_text(self.fact, self.value)}"
        return f"{label}: {_fact_text(self.fact, actual)}"


def _fact_text(fact: str, value: Any) -> str:
    """A fact's value in plain words (``near-edge``, ``phones or tablets``), never a raw key."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    text = str(value)
    table: Mapping[str, str] = {
        "primary": {str(k): v for k, v in TIER_LABELS.items()},
        "privacy_risk": PRIVACY_LABELS,
        "model_complexity": COMPLEXITY_LABELS,
        "workflow": WORKFLOW_LABELS,
        "hardware": {str(k): v for k, v in HARDWARE_LABELS.items()},
    }.get(fact, {})
    return table.get(text, text.replace("_", " "))


def _with_unit(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.4g} %"
    return f"{_plain(value)} {unit}".strip()


FACT_LABELS: dict[str, tuple[str, str]] = {
    **{name: (spec.label, spec.unit) for name, spec in NUMERIC_ANSWERS.items()},
    "site_upload_mbps": ("raw upload per site", "Mbit/s"),
    "workflow": ("workflow", ""),
    "privacy_risk": ("privacy risk", ""),
    "phi_involved": ("PHI involved", ""),
    "model_complexity": ("model complexity", ""),
    "hardware": ("existing hardware", ""),
    "primary": ("primary inference", ""),
    "cloud_allowed": ("cloud inference allowed", ""),
    "cloud_favoured": ("cloud favoured by a rule", ""),
    "partial_local_required": ("partial local inference required", ""),
}


class Part(StrEnum):
    """Which part of the answer a rule decides."""

    INFERENCE_LOCATION = "inference_location"
    LOCAL_TIER = "local_tier"
    EXTRA_TIER = "extra_tier"
    CLOUD_ROLE = "cloud_role"


class Effect(StrEnum):
    REQUIRE_LOCAL = "require_local"  # primary inference must be on-device or near-edge
    REQUIRE_PARTIAL_LOCAL = "require_partial_local"  # at least part of inference local
    FORBID_CLOUD_INFERENCE = "forbid_cloud_inference"  # raw inputs must not go to the cloud
    FAVOUR_CLOUD = "favour_cloud"
    FAVOUR_LOCAL = "favour_local"
    FAVOUR_ON_DEVICE = "favour_on_device"
    FAVOUR_NEAR_EDGE = "favour_near_edge"
    EXCLUDE_ON_DEVICE = "exclude_on_device"
    ADD_ON_DEVICE = "add_on_device"  # optional on-device quick checks beside the gateway
    ADD_NEAR_EDGE = "add_near_edge"  # optional near-edge fallback for heavier models
    ADD_CLOUD = "add_cloud"  # cloud inference for the escalated share (makes it hybrid)
    ADD_LOCAL = "add_local"  # local inference for outages beside cloud primary (hybrid)
    CLOUD_ROLE = "cloud_role"  # the cloud's training / orchestration / monitoring role


@dataclass(frozen=True)
class Rule:
    """A versioned decision rule: when any ``when`` group holds (all conditions in a group),
    the rule fires and applies ``effect``; favour effects count ``weight`` points."""

    id: str
    title: str
    part: Part
    effect: Effect
    when: tuple[tuple[Condition, ...], ...]
    rationale: str
    source: str = SOURCE_PLAYBOOK
    weight: int = 0
    # A data-governance concern (privacy): it wins a tie against a mere preference for the
    # cloud, because cloud inference needs governance that "allows sending inputs to the cloud".
    governance: bool = False

    def fires(self, facts: Mapping[str, Any]) -> bool:
        if not self.when:
            return True
        return any(all(cond.holds(facts) for cond in group) for group in self.when)

    def observed(self, facts: Mapping[str, Any]) -> str:
        """The conditions that made the rule fire, described with today's values."""
        for group in self.when:
            if all(cond.holds(facts) for cond in group):
                return "; ".join(cond.describe(facts) for cond in group)
        return "always applies"


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules compare against, in one versioned place."""

    tight_latency_ms: float = 200.0
    very_tight_latency_ms: float = 50.0
    intermittent_offline_share: float = 0.01
    long_outage_hours: float = 1.0
    frequent_offline_share: float = 0.10
    frequent_changes_per_year: float = 12.0
    slow_changes_per_year: float = 4.0
    shared_site_devices: int = 2
    heavy_upload_mbps: float = 5.0
    cloud_round_trip_risk_ms: float = 400.0
    many_sites: int = 10


THRESHOLDS = Thresholds()
_T = THRESHOLDS


def _c(fact: str, op: Op, value: float | str | bool | tuple[str, ...]) -> Condition:
    return Condition(fact, op, value)


RULES: tuple[Rule, ...] = (
    # Stage 1: constraints and preferences on where inference runs.
    Rule(
        id="latency.tight",
        title="Tight latency keeps inference local",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.REQUIRE_LOCAL,
        when=((_c("latency_tolerance_ms", Op.LT, _T.tight_latency_ms),),),
        rationale=(
            "A latency tolerance under 200 ms \u201coften pushes you toward on-device or "
            "near-edge\u201d: a cloud round trip with the payload upload does not fit reliably."
        ),
    ),
    Rule(
        id="offline.intermittent",
        title="Intermittent connectivity needs local inference",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.REQUIRE_PARTIAL_LOCAL,
        when=(
            (_c("offline_share", Op.GE, _T.intermittent_offline_share),),
            (_c("longest_outage_hours", Op.GE, _T.long_outage_hours),),
        ),
        rationale=(
            "If the environment is offline or intermittently connected, \u201cyou need at "
            "least partial on-device/near-edge inference\u201d so the workflow still completes."
        ),
        source=_playbook_rule_opshero_threshold("1 % of the time or a 1 h outage"),
    ),
    Rule(
        id="offline.frequent",
        title="Frequent outages make local inference primary",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.REQUIRE_LOCAL,
        when=((_c("offline_share", Op.GE, _T.frequent_offline_share),),),
        rationale=(
            "Offline for a tenth of the time or more, the local path is the everyday path: "
            "this is \u201cwhere cloud-only systems fail\u201d, so local inference leads."
        ),
        source=SOURCE_OPSHERO + " (10 % of the time), from the playbook's offline guidance",
    ),
    Rule(
        id="privacy.high",
        title="High privacy risk keeps raw data local",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FORBID_CLOUD_INFERENCE,
        when=((_c("privacy_risk", Op.EQ, PrivacyRisk.HIGH.value),),),
        rationale=(
            "When privacy or regulatory risk is high, \u201cminimize raw data movement and run "
            "inference locally\u201d; only predictions and events leave the site."
        ),
    ),
    Rule(
        id="privacy.phi",
        title="PHI forces local inference with strict data minimisation",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FORBID_CLOUD_INFERENCE,
        when=((_c("phi_involved", Op.EQ, True),),),
        rationale=(
            "With PHI the playbook's healthcare pattern runs \u201con-device or near-edge with "
            "strict data minimization\u201d and uploads only de-identified results."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="privacy.medium",
        title="Moderate privacy risk favours keeping inputs on site",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        when=((_c("privacy_risk", Op.EQ, PrivacyRisk.MEDIUM.value),),),
        rationale=(
            "Near-edge is \u201cbest for shared resources across multiple devices, moderate "
            "privacy, and stable latency\u201d; cloud needs governance that allows sending inputs."
        ),
        governance=True,
    ),
    Rule(
        id="change.frequent",
        title="Frequent model changes favour the cloud",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_CLOUD,
        weight=1,
        when=((_c("model_changes_per_year", Op.GE, _T.frequent_changes_per_year),),),
        rationale=(
            "\u201cFrequent iteration favors cloud\u201d: a model that changes monthly or more "
            "often is cheapest to ship where it is trained."
        ),
        source=_playbook_rule_opshero_threshold("12 changes a year"),
    ),
    Rule(
        id="change.slow_assured",
        title="Slow-changing, high-assurance workflows favour the edge",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        when=(
            (
                _c("model_changes_per_year", Op.LE, _T.slow_changes_per_year),
                _c("privacy_risk", Op.IN, (PrivacyRisk.MEDIUM.value, PrivacyRisk.HIGH.value)),
            ),
        ),
        rationale=(
            "\u201cSlower-changing high-assurance workflows can favor edge\u201d: quarterly or "
            "rarer changes keep edge rollouts manageable."
        ),
        source=_playbook_rule_opshero_threshold("4 changes a year, moderate or high privacy"),
    ),
    Rule(
        id="model.large_favours_cloud",
        title="A large model favours the cloud",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_CLOUD,
        weight=1,
        when=((_c("model_complexity", Op.EQ, ModelComplexity.LARGE.value),),),
        rationale=(
            "Choose cloud inference when \u201cyou need high model complexity\u201d and nothing "
            "else forces inference on site."
        ),
    ),
    Rule(
        id="bandwidth.heavy",
        title="Heavy raw uploads favour local inference",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        when=((_c("site_upload_mbps", Op.GE, _T.heavy_upload_mbps),),),
        rationale=(
            "Streaming every frame is the \u201cwe streamed everything to cloud\u201d failure "
            "mode; local inference sends events instead and reduces bandwidth costs."
        ),
        source=_playbook_rule_opshero_threshold("5 Mbit/s"),
    ),
    # Stage 1: the workflow's own reference architecture weighs in (one point, never a veto:
    # the four questions above still decide when they are clear).
    Rule(
        id="workflow.healthcare_privacy",
        title="Clinical decision support keeps patient data on site",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        governance=True,
        when=((_c("workflow", Op.EQ, Workflow.HEALTHCARE_DECISION_SUPPORT.value),),),
        rationale=(
            "The playbook's healthcare pattern runs \u201con-device or near-edge with strict "
            "data minimization\u201d to minimise PHI exposure: clinical inputs are sensitive "
            "even when no answer forces it."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="workflow.field_service_offline",
        title="Field work must keep working without a network",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        when=((_c("workflow", Op.EQ, Workflow.FIELD_SERVICE_TRIAGE.value),),),
        rationale=(
            "Technicians diagnose \u201cwithout needing constant connectivity\u201d: the field "
            "is \u201cwhere cloud-only systems fail\u201d, so the playbook's pattern is "
            "on-device-first."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="workflow.dock_local",
        title="Dock vision favours inference at the site",
        part=Part.INFERENCE_LOCATION,
        effect=Effect.FAVOUR_LOCAL,
        weight=1,
        when=((_c("workflow", Op.EQ, Workflow.LOGISTICS_DOCK_VISION.value),),),
        rationale=(
            "The playbook's dock pattern gives \u201clow latency at the dock, offline tolerance "
            "during WAN issues, and privacy by not streaming everything\u201d."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    # Stage 1: which local tier (on-device or near-edge).
    Rule(
        id="workflow.dock_near_edge",
        title="Dock vision runs on a site gateway",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_NEAR_EDGE,
        weight=1,
        when=((_c("workflow", Op.EQ, Workflow.LOGISTICS_DOCK_VISION.value),),),
        rationale=(
            "In the dock pattern the near-edge gateway is the \u201cprimary inference\u201d, "
            "running vision models \u201cto reduce per-device compute needs\u201d; handheld "
            "scanners only add quick checks."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="workflow.field_service_on_device",
        title="Technicians carry the model: on-device first",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_ON_DEVICE,
        weight=1,
        when=((_c("workflow", Op.EQ, Workflow.FIELD_SERVICE_TRIAGE.value),),),
        rationale=(
            "The field-service pattern runs \u201ccore classification/regression locally\u201d "
            "on the technician's device, with a site gateway only \u201cif available\u201d."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="model.large_not_on_device",
        title="A large model does not belong on a phone or handheld",
        part=Part.LOCAL_TIER,
        effect=Effect.EXCLUDE_ON_DEVICE,
        when=((_c("model_complexity", Op.EQ, ModelComplexity.LARGE.value),),),
        rationale=(
            "On-device fits when \u201cyou can tolerate smaller models\u201d; heavy models go to "
            "a gateway \u201cto reduce per-device compute needs\u201d."
        ),
    ),
    Rule(
        id="site.shared_gateway",
        title="Several devices with a non-trivial model share a gateway",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_NEAR_EDGE,
        weight=1,
        when=(
            (
                _c("devices_per_site", Op.GE, _T.shared_site_devices),
                _c(
                    "model_complexity",
                    Op.IN,
                    (ModelComplexity.MEDIUM.value, ModelComplexity.LARGE.value),
                ),
            ),
        ),
        rationale=(
            "Near-edge fits when \u201cmultiple devices need AI\u201d and you want \u201cbetter "
            "performance per watt than phones alone\u201d and consistent behaviour at a site."
        ),
    ),
    Rule(
        id="site.single_device",
        title="A single device per site favours on-device",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_ON_DEVICE,
        weight=1,
        when=((_c("devices_per_site", Op.LT, _T.shared_site_devices),),),
        rationale=(
            "With one device per site a gateway serves nobody else; on-device gives "
            "\u201cimmediate UX (capture \u2192 predict \u2192 act)\u201d."
        ),
        source=SOURCE_OPSHERO + ", reading the playbook's near-edge guidance",
    ),
    Rule(
        id="latency.very_tight",
        title="Very tight latency favours on-device",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_ON_DEVICE,
        weight=1,
        when=((_c("latency_tolerance_ms", Op.LT, _T.very_tight_latency_ms),),),
        rationale=(
            "Under 50 ms a Wi-Fi hop and queueing at a shared gateway take a real share of the "
            "budget; on-device is \u201cbest for immediate feedback\u201d."
        ),
        source=SOURCE_OPSHERO + " (50 ms)",
    ),
    Rule(
        id="hardware.device_npu",
        title="Existing NPU devices make on-device practical",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_ON_DEVICE,
        weight=1,
        when=(
            (_c("hardware", Op.HAS, ExistingHardware.PHONES_TABLETS.value),),
            (_c("hardware", Op.HAS, ExistingHardware.WINDOWS_NPU_FLEET.value),),
        ),
        rationale=(
            "Mobile NPUs are \u201cstrong for on-device inference\u201d and Windows NPUs are "
            "\u201cviable when you have existing Windows fleets\u201d."
        ),
    ),
    Rule(
        id="hardware.jetson",
        title="Existing Jetson-class boxes make near-edge practical",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_NEAR_EDGE,
        weight=1,
        when=((_c("hardware", Op.HAS, ExistingHardware.JETSON_CLASS.value),),),
        rationale=(
            "Embedded edge modules (Jetson-class) are \u201cuseful for near-edge vision "
            "workloads\u201d."
        ),
    ),
    Rule(
        id="hardware.site_gateway",
        title="Existing site gateways make near-edge practical",
        part=Part.LOCAL_TIER,
        effect=Effect.FAVOUR_NEAR_EDGE,
        weight=1,
        when=((_c("hardware", Op.HAS, ExistingHardware.SITE_GATEWAY.value),),),
        rationale=(
            "A \u201clocal gateway/mini-PC at the site\u201d is what near-edge inference runs "
            "on, \u201cbest for shared resources across multiple devices\u201d."
        ),
    ),
    # Stage 2: extra tiers, decided after the primary location.
    Rule(
        id="split.local_for_outages",
        title="Cloud primary keeps a local path for outages",
        part=Part.EXTRA_TIER,
        effect=Effect.ADD_LOCAL,
        when=(
            (
                _c("primary", Op.EQ, Tier.CLOUD.value),
                _c("partial_local_required", Op.EQ, True),
            ),
        ),
        rationale=(
            "The cloud is favoured here, but with intermittent connectivity \u201cyou need at "
            "least partial on-device/near-edge inference\u201d: a local model covers outages."
        ),
    ),
    Rule(
        id="split.cloud_escalation",
        title="Local primary escalates heavy or low-confidence cases to the cloud",
        part=Part.EXTRA_TIER,
        effect=Effect.ADD_CLOUD,
        when=(
            (
                _c("primary", Op.IN, (Tier.ON_DEVICE.value, Tier.NEAR_EDGE.value)),
                _c("cloud_allowed", Op.EQ, True),
                _c("cloud_favoured", Op.EQ, True),
            ),
        ),
        rationale=(
            "\u201cHybrid is usually the answer\u201d: the edge runs inference for speed and "
            "offline, while the cloud's bigger or faster-iterating model takes the cases the "
            "local model is unsure of, when connected."
        ),
    ),
    Rule(
        id="split.on_device_quick_checks",
        title="Handhelds add quick on-device checks beside the gateway",
        part=Part.EXTRA_TIER,
        effect=Effect.ADD_ON_DEVICE,
        when=(
            (
                _c("primary", Op.EQ, Tier.NEAR_EDGE.value),
                _c("hardware", Op.HAS, ExistingHardware.PHONES_TABLETS.value),
                _c("latency_tolerance_ms", Op.LT, _T.tight_latency_ms),
            ),
        ),
        rationale=(
            "The playbook's dock pattern adds \u201cquick checks on handheld scanners for "
            "immediate feedback\u201d (optional) next to the gateway."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="split.near_edge_fallback",
        title="On-device primary can hand heavier models to a site gateway",
        part=Part.EXTRA_TIER,
        effect=Effect.ADD_NEAR_EDGE,
        when=(
            (
                _c("primary", Op.EQ, Tier.ON_DEVICE.value),
                _c("model_complexity", Op.EQ, ModelComplexity.MEDIUM.value),
            ),
        ),
        rationale=(
            "The playbook's field-service pattern is \u201con-device-first with near-edge "
            "fallback\u201d: where a gateway is available it runs the heavier models."
        ),
        source=SOURCE_PLAYBOOK_PATTERN,
    ),
    Rule(
        id="cloud.brain",
        title="The cloud trains, orchestrates and monitors",
        part=Part.CLOUD_ROLE,
        effect=Effect.CLOUD_ROLE,
        when=(),
        rationale=(
            "\u201cCloud remains the best \u2018brain\u2019 for training and orchestration\u201d; "
            "event pipelines sync only what you need (features, predictions, aggregates)."
        ),
    ),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}


@dataclass(frozen=True)
class TieBreak:
    """How the rules decide when the points are equal: data too, so it is visible and tested."""

    id: str
    rationale: str


TIE_BREAKS = {
    "tie.local_tier": TieBreak(
        "tie.local_tier",
        "On-device and near-edge scored equally; near-edge wins because a site gateway keeps "
        "\u201cconsistent model behavior at a site\u201d and central local logging.",
    ),
    "tie.location_local": TieBreak(
        "tie.location_local",
        "Cloud and local scored equally; local inference is needed for outages anyway, so one "
        "local path is simpler to run than two.",
    ),
    "tie.location_cloud": TieBreak(
        "tie.location_cloud",
        "Nothing requires or favours local inference: cloud fits when \u201clatency doesn't "
        "break the workflow\u201d and governance allows sending inputs, with centralised "
        "monitoring.",
    ),
    "tie.location_privacy": TieBreak(
        "tie.location_privacy",
        "Local and cloud scored equally; the privacy concern wins the tie, because cloud "
        "inference needs governance that \u201callows sending inputs to the cloud\u201d and the "
        "playbook lists moderate privacy under near-edge. The cloud still takes the heavy or "
        "fast-changing cases.",
    ),
    "tie.location_even": TieBreak(
        "tie.location_even",
        "Local and cloud scored equally and no answer requires local inference or raises a "
        "privacy concern: the cloud wins the tie for \u201cfast iteration, centralized "
        "monitoring\u201d and one place to run the model.",
    ),
}


# --- Reference architectures --------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceArchitecture:
    """One of the seed's production patterns (or a generic one for a custom workflow)."""

    key: str
    title: str
    goal: str
    recommended: str
    tier_roles: tuple[tuple[Tier, str], ...]
    data_flow: tuple[str, ...]
    operational_controls: tuple[str, ...]
    why: str
    primary_tiers: tuple[Tier, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "goal": self.goal,
            "recommended": self.recommended,
            "tier_roles": [{"tier": str(tier), "role": role} for tier, role in self.tier_roles],
            "data_flow": list(self.data_flow),
            "operational_controls": list(self.operational_controls),
            "why": self.why,
            "primary_tiers": [str(tier) for tier in self.primary_tiers],
        }


REFERENCE_ARCHITECTURES: dict[Workflow, ReferenceArchitecture] = {
    Workflow.LOGISTICS_DOCK_VISION: ReferenceArchitecture(
        key="logistics_dock_vision",
        title="Logistics: computer vision at the dock",
        goal="Detect damage, verify labels, and classify exceptions quickly.",
        recommended="Near-edge + selective on-device",
        tier_roles=(
            (Tier.ON_DEVICE, "Optional: quick checks on handheld scanners for immediate feedback."),
            (
                Tier.NEAR_EDGE,
                "Primary inference: run vision models at the dock to reduce per-device compute.",
            ),
            (Tier.CLOUD, "Store aggregated metrics and retrain models."),
        ),
        data_flow=(
            "Capture image/video at the dock.",
            "Run inference locally on the gateway.",
            "Emit structured events (e.g. label_confidence=0.92, damage_type=cracked_glass).",
            "Send events to the cloud; optionally upload only low-confidence samples or audit "
            "cases.",
            "Use the cloud to review exceptions and improve models.",
        ),
        operational_controls=(
            "Confidence thresholds tuned per lane/site.",
            "Human-in-the-loop for low-confidence cases.",
            "Signed model updates with staged rollout.",
        ),
        why=(
            "Low latency at the dock, offline tolerance during WAN issues, and privacy by not "
            "streaming everything."
        ),
        primary_tiers=(Tier.NEAR_EDGE,),
    ),
    Workflow.FIELD_SERVICE_TRIAGE: ReferenceArchitecture(
        key="field_service_triage",
        title="Field service: offline triage and guided repair",
        goal=(
            "Help technicians diagnose issues using sensor readings and camera inputs, without "
            "needing constant connectivity."
        ),
        recommended="On-device-first with near-edge fallback",
        tier_roles=(
            (
                Tier.ON_DEVICE,
                "Run core classification/regression locally (e.g. identify equipment state).",
            ),
            (Tier.NEAR_EDGE, "If available, run heavier models when the tech arrives at a site."),
            (Tier.CLOUD, "Sync work orders, model improvements, and fleet analytics."),
        ),
        data_flow=(
            "Technician captures photo/video/sensor snapshot.",
            "Device runs inference locally.",
            "App generates a recommended next step or diagnostic checklist.",
            "When connected, upload only structured findings + selected evidence.",
            "Cloud updates work-order status and collects drift signals.",
        ),
        operational_controls=(
            "Offline-first UX: make sure the workflow still completes.",
            "Model versioning visible in the app for support.",
            "Post-job feedback loop (thumbs up/down + reason).",
        ),
        why="The AI remains usable in the field, which is where cloud-only systems fail.",
        primary_tiers=(Tier.ON_DEVICE,),
    ),
    Workflow.HEALTHCARE_DECISION_SUPPORT: ReferenceArchitecture(
        key="healthcare_decision_support",
        title="Healthcare: privacy-preserving decision support",
        goal="Support triage or documentation workflows while minimizing PHI exposure.",
        recommended="On-device or near-edge with strict data minimization",
        tier_roles=(
            (Tier.ON_DEVICE, "Where feasible: run inference on captured media."),
            (Tier.NEAR_EDGE, "For clinics with local hardware, standardize model behavior."),
            (
                Tier.CLOUD,
                "Store de-identified aggregates and training datasets with governance.",
            ),
        ),
        data_flow=(
            "Capture clinical data.",
            "Run inference locally.",
            "Store local predictions and confidence.",
            "Upload de-identified results and only necessary evidence.",
            "Cloud retrains under compliance-approved pipelines.",
        ),
        operational_controls=(
            "Encryption at rest and in transit.",
            "Signed artifacts, audit logs, and access controls.",
            "Clear user-facing labeling: AI assistance vs clinical decision.",
        ),
        why="You reduce privacy risk and bandwidth costs while still improving over time.",
        primary_tiers=(Tier.ON_DEVICE, Tier.NEAR_EDGE),
    ),
}


def _generic_architecture(*, tiers: tuple[Tier, ...]) -> ReferenceArchitecture:
    """A pattern for a custom workflow, assembled from the seed's placement guidance."""
    primary = tiers[0]
    if primary is Tier.CLOUD:
        roles: list[tuple[Tier, str]] = [
            (Tier.CLOUD, "Primary inference, training, centralised monitoring and scaling."),
        ]
        roles += [
            (tier, "Local model keeps the workflow completing during outages.")
            for tier in tiers[1:]
        ]
        flow: tuple[str, ...] = (
            "Capture the input where the work happens.",
            "Send only the input the model needs to the cloud endpoint.",
            "Run inference in the cloud and return the result to the workflow.",
            "Log predictions, confidence and model version centrally.",
            "Review exceptions and retrain from governed data.",
        )
        controls: tuple[str, ...] = (
            "Data governance: confirm which inputs may be sent to the cloud.",
            "End-to-end P95 time-to-action measured against the latency tolerance.",
            "Budget alerts on cost per 1,000 inferences.",
        )
    else:
        where = TIER_LABELS[primary]
        roles = [(primary, "Primary inference, close to where the work happens.")]
        for tier in tiers[1:]:
            role = (
                "Takes heavy or low-confidence cases when connected."
                if tier is Tier.CLOUD
                else "Optional helper tier for quick checks or heavier models."
            )
            roles.append((tier, role))
        if Tier.CLOUD not in tiers:
            roles.append((Tier.CLOUD, "Training, orchestration and aggregated monitoring."))
        flow = (
            "Capture the input on the device.",
            f"Run inference locally ({where}).",
            "Act on the prediction in the workflow immediately.",
            "Emit structured events (prediction, confidence, model version); sync when connected.",
            "Use the cloud to review low-confidence cases, watch drift and retrain.",
        )
        controls = (
            "Signed model updates with staged rollout and rollback.",
            "Model versioning visible for support.",
            "Field observability from day one: latency, confidence, failure modes.",
        )
    return ReferenceArchitecture(
        key="custom",
        title=f"Custom workflow: {_describe_tiers(tiers)}",
        goal="Your workflow, placed by the decision rules.",
        recommended=_describe_tiers(tiers),
        tier_roles=tuple(roles),
        data_flow=flow,
        operational_controls=controls,
        why="Inference runs where your answers put it; learning stays centralised.",
        primary_tiers=(primary,),
    )


# --- The decision -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementPart:
    """What one tier does in the answer, and the rules that put it there."""

    tier: Tier
    role: str
    rule_ids: tuple[str, ...]
    inference: bool
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": str(self.tier),
            "role": self.role,
            "rule_ids": list(self.rule_ids),
            "inference": self.inference,
            "optional": self.optional,
        }


@dataclass(frozen=True)
class RuleFinding:
    """A rule that fired, why, and the answers that triggered it.

    ``overridden_by`` names the stronger rules (or the tie-break) that decided against it: such
    a finding did not shape the answer and is shown as "overridden by ...", not as a reason.
    """

    rule_id: str
    title: str
    part: Part
    rationale: str
    observed: str
    source: str
    overridden_by: tuple[str, ...] = ()
    overridden_note: str = ""

    @property
    def overridden(self) -> bool:
        return bool(self.overridden_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "part": str(self.part),
            "rationale": self.rationale,
            "observed": self.observed,
            "source": self.source,
            "overridden_by": list(self.overridden_by),
            "overridden_note": self.overridden_note,
        }


@dataclass(frozen=True)
class Risk:
    id: str
    text: str
    mitigation: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "mitigation": self.mitigation}


@dataclass(frozen=True)
class WhatIf:
    """One answer moved just across a threshold, and the placement it would produce."""

    answer: str
    label: str
    current: Any
    threshold: Any
    counterfactual: Any
    new_placement: Placement
    new_tiers: tuple[Tier, ...]
    sentence: str
    distance: float | None  # relative distance to the threshold; None for a changed choice

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "label": self.label,
            "current": _jsonable(self.current),
            "threshold": _jsonable(self.threshold),
            "counterfactual": _jsonable(self.counterfactual),
            "new_placement": str(self.new_placement),
            "new_tiers": [str(tier) for tier in self.new_tiers],
            "sentence": self.sentence,
            "distance": self.distance,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list | frozenset | set):
        return sorted(str(item) for item in value)
    if isinstance(value, StrEnum):
        return str(value)
    return value


@dataclass(frozen=True)
class WizardResult:
    """The wizard's answer; ``inference_tiers`` lists primary inference first."""

    ruleset_version: str
    answers: WizardAnswers
    placement: Placement
    inference_tiers: tuple[Tier, ...]
    summary: str
    parts: tuple[PlacementPart, ...]
    findings: tuple[RuleFinding, ...]
    architecture: ReferenceArchitecture
    architecture_note: str
    risks: tuple[Risk, ...]
    what_would_change: tuple[WhatIf, ...]

    @property
    def primary_tier(self) -> Tier:
        return self.inference_tiers[0]

    @property
    def local_tier(self) -> Tier | None:
        """The local inference tier (the one the ROI engine's hybrid uses), if any."""
        for tier in self.inference_tiers:
            if tier in LOCAL_TIERS:
                return tier
        return None

    @property
    def all_tiers(self) -> tuple[Tier, ...]:
        """Every tier with a role, inference or not (optional helpers included)."""
        return tuple(dict.fromkeys(part.tier for part in self.parts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset_version": self.ruleset_version,
            "answers": self.answers.to_dict(),
            "placement": str(self.placement),
            "inference_tiers": [str(tier) for tier in self.inference_tiers],
            "summary": self.summary,
            "parts": [part.to_dict() for part in self.parts],
            "findings": [finding.to_dict() for finding in self.findings],
            "architecture": self.architecture.to_dict(),
            "architecture_note": self.architecture_note,
            "risks": [risk.to_dict() for risk in self.risks],
            "what_would_change": [item.to_dict() for item in self.what_would_change],
        }


@dataclass(frozen=True)
class _Decision:
    """The bare decision (no what-ifs): what counterfactuals are compared on."""

    placement: Placement
    inference_tiers: tuple[Tier, ...]
    optional_tiers: tuple[Tier, ...]
    fired: tuple[str, ...]
    ties: tuple[str, ...]
    facts: Mapping[str, Any]
    primary_rules: tuple[str, ...]
    local_tier_rules: tuple[str, ...]
    overridden: Mapping[str, tuple[str, ...]]
    cloud_rules: tuple[str, ...]  # the cloud preferences an escalation to the cloud serves

    @property
    def key(self) -> tuple[Placement, tuple[Tier, ...], tuple[Tier, ...]]:
        return (self.placement, self.inference_tiers, self.optional_tiers)


def _facts(answers: WizardAnswers) -> dict[str, Any]:
    facts: dict[str, Any] = {name: getattr(answers, name) for name in NUMERIC_ANSWERS}
    facts.update(
        workflow=answers.workflow.value,
        privacy_risk=answers.privacy_risk.value,
        phi_involved=answers.phi_involved,
        model_complexity=answers.model_complexity.value,
        hardware=frozenset(item.value for item in answers.hardware),
        site_upload_mbps=answers.site_upload_mbps,
    )
    return facts


def _decide_core(answers: WizardAnswers) -> _Decision:
    facts = _facts(answers)
    stage_one = [rule for rule in RULES if rule.part is not Part.EXTRA_TIER]
    fired = [rule for rule in stage_one if rule.fires(facts)]
    effects: dict[Effect, list[Rule]] = {}
    for rule in fired:
        effects.setdefault(rule.effect, []).append(rule)

    def ids(*kinds: Effect) -> tuple[str, ...]:
        return tuple(rule.id for kind in kinds for rule in effects.get(kind, []))

    def points(kind: Effect) -> int:
        return sum(rule.weight for rule in effects.get(kind, []))

    ties: list[str] = []
    # A fired rule that lost to a stronger one -> the rules (or tie-break) that beat it.
    overridden: dict[str, tuple[str, ...]] = {}

    def override(losers: tuple[str, ...], winners: tuple[str, ...]) -> None:
        for loser in losers:
            overridden.setdefault(loser, winners)

    # Which local tier would run inference if inference is local.
    on_device_allowed = Effect.EXCLUDE_ON_DEVICE not in effects
    if not on_device_allowed:
        local_tier = Tier.NEAR_EDGE
        local_tier_rules = ids(Effect.EXCLUDE_ON_DEVICE)
        override(ids(Effect.FAVOUR_ON_DEVICE), local_tier_rules)
    else:
        on_device_points = points(Effect.FAVOUR_ON_DEVICE)
        near_edge_points = points(Effect.FAVOUR_NEAR_EDGE)
        if on_device_points > near_edge_points:
            local_tier, local_tier_rules = Tier.ON_DEVICE, ids(Effect.FAVOUR_ON_DEVICE)
            override(ids(Effect.FAVOUR_NEAR_EDGE), local_tier_rules)
        elif near_edge_points > on_device_points:
            local_tier, local_tier_rules = Tier.NEAR_EDGE, ids(Effect.FAVOUR_NEAR_EDGE)
            override(ids(Effect.FAVOUR_ON_DEVICE), local_tier_rules)
        else:
            local_tier = Tier.NEAR_EDGE
            local_tier_rules = ids(Effect.FAVOUR_NEAR_EDGE)
            override(ids(Effect.FAVOUR_ON_DEVICE), ("tie.local_tier",))
            ties.append("tie.local_tier")

    cloud_allowed = Effect.FORBID_CLOUD_INFERENCE not in effects
    local_required = Effect.REQUIRE_LOCAL in effects or not cloud_allowed
    partial_local = Effect.REQUIRE_PARTIAL_LOCAL in effects
    cloud_points = points(Effect.FAVOUR_CLOUD)
    local_points = points(Effect.FAVOUR_LOCAL)
    governance = any(rule.governance for rule in effects.get(Effect.FAVOUR_LOCAL, []))

    if local_required:
        primary = local_tier
        primary_rules = ids(Effect.REQUIRE_LOCAL, Effect.FORBID_CLOUD_INFERENCE)
        if not cloud_allowed:  # no cloud escalation either: the cloud preference lost
            override(ids(Effect.FAVOUR_CLOUD), ids(Effect.FORBID_CLOUD_INFERENCE))
    elif local_points > cloud_points:
        primary, primary_rules = local_tier, ids(Effect.FAVOUR_LOCAL)
    elif cloud_points > local_points:
        primary, primary_rules = Tier.CLOUD, ids(Effect.FAVOUR_CLOUD)
        override(ids(Effect.FAVOUR_LOCAL), primary_rules)
    elif governance:
        primary = local_tier
        primary_rules = ids(Effect.FAVOUR_LOCAL)
        ties.append("tie.location_privacy")
    elif partial_local:
        primary = local_tier
        primary_rules = ids(Effect.REQUIRE_PARTIAL_LOCAL, Effect.FAVOUR_LOCAL)
        ties.append("tie.location_local")
    elif local_points:
        primary, primary_rules = Tier.CLOUD, ids(Effect.FAVOUR_CLOUD)
        override(ids(Effect.FAVOUR_LOCAL), (*primary_rules, "tie.location_even"))
        ties.append("tie.location_even")
    else:
        primary, primary_rules = Tier.CLOUD, ()
        ties.append("tie.location_cloud")

    facts.update(
        primary=primary.value,
        cloud_allowed=cloud_allowed,
        cloud_favoured=cloud_points > 0,
        partial_local_required=partial_local,
    )
    extra_fired = [rule for rule in RULES if rule.part is Part.EXTRA_TIER and rule.fires(facts)]

    inference: list[Tier] = [primary]
    optional: list[Tier] = []
    for rule in extra_fired:
        match rule.effect:
            case Effect.ADD_LOCAL:
                inference.append(local_tier)
            case Effect.ADD_CLOUD:
                inference.append(Tier.CLOUD)
            case Effect.ADD_ON_DEVICE:
                optional.append(Tier.ON_DEVICE)
            case Effect.ADD_NEAR_EDGE:
                optional.append(Tier.NEAR_EDGE)
    tiers = tuple(dict.fromkeys(inference))
    placement = Placement.HYBRID if len(tiers) > 1 else Placement(primary.value)
    return _Decision(
        placement=placement,
        inference_tiers=tiers,
        optional_tiers=tuple(tier for tier in dict.fromkeys(optional) if tier not in tiers),
        fired=tuple(rule.id for rule in fired + extra_fired),
        overridden=overridden,
        cloud_rules=ids(Effect.FAVOUR_CLOUD),
        ties=tuple(ties),
        facts=facts,
        primary_rules=primary_rules,
        local_tier_rules=local_tier_rules,
    )


def _describe_tiers(tiers: Sequence[Tier], optional: Sequence[Tier] = ()) -> str:
    names = [TIER_LABELS[tier] for tier in tiers]
    text = names[0] if len(names) == 1 else f"hybrid ({' + '.join(names)})"
    if optional:
        text += f" with optional {' + '.join(TIER_LABELS[tier] for tier in optional)}"
    return text


def _summary(decision: _Decision, *, cloud_allowed: bool) -> str:
    primary = decision.inference_tiers[0]
    sentence = f"Primary inference runs {TIER_PLACES[primary]}"
    if Tier.CLOUD in decision.inference_tiers[1:]:
        sentence += "; the cloud takes heavy or low-confidence cases when connected"
    local_extra = [tier for tier in decision.inference_tiers[1:] if tier is not Tier.CLOUD]
    if local_extra:
        sentence += f"; a {TIER_LABELS[local_extra[0]]} model keeps working during outages"
    if Tier.ON_DEVICE in decision.optional_tiers:
        sentence += "; handhelds can add quick on-device checks"
    if Tier.NEAR_EDGE in decision.optional_tiers:
        sentence += "; a site gateway, where available, runs heavier models"
    brain = "trains and orchestrates" if cloud_allowed else "trains on de-identified data only"
    headline = _describe_tiers(decision.inference_tiers).capitalize()
    return f"{headline}. {sentence}; the cloud {brain}."


_EXTRA_ROLES = {
    Effect.ADD_LOCAL: "Local inference so the workflow completes during outages.",
    Effect.ADD_CLOUD: "Cloud inference for heavy or low-confidence cases, when connected.",
    Effect.ADD_ON_DEVICE: "Quick checks on handhelds for immediate feedback.",
    Effect.ADD_NEAR_EDGE: "Heavier models on a site gateway, where one is available.",
}


_EXTRA_TIERS = {
    Effect.ADD_CLOUD: Tier.CLOUD,
    Effect.ADD_ON_DEVICE: Tier.ON_DEVICE,
    Effect.ADD_NEAR_EDGE: Tier.NEAR_EDGE,
}


def _parts(decision: _Decision, *, cloud_allowed: bool) -> tuple[PlacementPart, ...]:
    """Which tier does what, each with exactly the rules and tie-breaks that put it there."""
    location_ties = tuple(tie for tie in decision.ties if tie != "tie.local_tier")
    local_choice = decision.local_tier_rules + tuple(
        tie for tie in decision.ties if tie == "tie.local_tier"
    )
    primary = decision.inference_tiers[0]
    rule_ids = decision.primary_rules + location_ties
    if primary in LOCAL_TIERS:
        rule_ids += local_choice
    parts = [PlacementPart(primary, "Primary inference.", rule_ids, inference=True)]
    for rule_id in decision.fired:
        rule = RULES_BY_ID[rule_id]
        if rule.part is not Part.EXTRA_TIER:
            continue
        if rule.effect is Effect.ADD_LOCAL:
            tier, rule_ids = decision.inference_tiers[1], (rule.id, *local_choice)
        elif rule.effect is Effect.ADD_CLOUD:
            tier, rule_ids = Tier.CLOUD, (rule.id, *decision.cloud_rules)
        else:
            tier, rule_ids = _EXTRA_TIERS[rule.effect], (rule.id,)
        if any(part.tier is tier for part in parts):
            continue
        parts.append(
            PlacementPart(
                tier,
                _EXTRA_ROLES[rule.effect],
                rule_ids,
                inference=True,
                optional=tier in decision.optional_tiers,
            )
        )
    brain = (
        "Training, model improvement, orchestration and monitoring from events and aggregates."
        if cloud_allowed
        else "Training on de-identified aggregates under governance; orchestration and "
        "monitoring from events only."
    )
    cloud = next((part for part in parts if part.tier is Tier.CLOUD), None)
    if cloud is None:
        parts.append(PlacementPart(Tier.CLOUD, brain, ("cloud.brain",), inference=False))
    else:
        index = parts.index(cloud)
        role = (
            "Primary inference, training, orchestration and monitoring."
            if cloud is parts[0]
            else f"{cloud.role} {brain}"
        )
        parts[index] = replace(cloud, role=role, rule_ids=(*cloud.rule_ids, "cloud.brain"))
    return tuple(parts)


def _findings(decision: _Decision) -> tuple[RuleFinding, ...]:
    # Rules that choose between on-device and near-edge are noise when nothing runs locally.
    uses_local = any(
        tier in LOCAL_TIERS for tier in decision.inference_tiers + decision.optional_tiers
    )
    findings = [
        RuleFinding(
            rule_id=rule.id,
            title=rule.title,
            part=rule.part,
            rationale=rule.rationale,
            observed=rule.observed(decision.facts),
            source=rule.source,
            overridden_by=decision.overridden.get(rule.id, ()),
            overridden_note=_overridden_note(decision.overridden.get(rule.id, ())),
        )
        for rule in (RULES_BY_ID[rule_id] for rule_id in decision.fired)
        if uses_local or rule.part is not Part.LOCAL_TIER
    ]
    for tie_id in decision.ties:
        if tie_id == "tie.local_tier" and not uses_local:
            continue
        tie = TIE_BREAKS[tie_id]
        part = Part.LOCAL_TIER if tie_id == "tie.local_tier" else Part.INFERENCE_LOCATION
        findings.append(
            RuleFinding(
                rule_id=tie.id,
                title="Tie-break",
                part=part,
                rationale=tie.rationale,
                observed="equal points",
                source="OpsHero tie-break",
            )
        )
    # What decided first, then what was considered and lost.
    return tuple(sorted(findings, key=lambda finding: finding.overridden))


def _overridden_note(winners: tuple[str, ...]) -> str:
    if not winners:
        return ""
    names = [
        RULES_BY_ID[rule_id].title if rule_id in RULES_BY_ID else "the tie-break"
        for rule_id in winners
    ]
    return "Overridden by " + "; ".join(f"\u201c{name}\u201d" for name in names) + "."


# --- Risks (data as well) -------------------------------------------------------------------


@dataclass(frozen=True)
class RiskRule:
    id: str
    when: tuple[tuple[Condition, ...], ...]
    text: str
    mitigation: str


_LOCAL = _c("local_inference", Op.EQ, True)

RISK_RULES: tuple[RiskRule, ...] = (
    RiskRule(
        "risk.hardware_first",
        ((_LOCAL, _c("has_hardware", Op.EQ, False)),),
        "No suitable hardware yet: the playbook's first failure mode is \u201cwe picked the "
        "hardware first\u201d.",
        "Score two or three candidate stacks and run a conversion spike before buying.",
    ),
    RiskRule(
        "risk.conversion",
        ((_LOCAL,),),
        "Model conversion may not cover your operators and data shapes (\u201cwe assumed "
        "conversion would work\u201d).",
        "Run an early conversion spike that covers your exact operators and data shapes.",
    ),
    RiskRule(
        "risk.updates_and_debugging",
        ((_LOCAL,),),
        "Edge models are hard to support without updates and debugging planned in "
        "(\u201cwe didn't plan for updates and debugging\u201d).",
        "Model versioning, signed artifacts and field observability from day one.",
    ),
    RiskRule(
        "risk.frequent_edge_updates",
        ((_LOCAL, _c("model_changes_per_year", Op.GE, _T.frequent_changes_per_year)),),
        "Frequent model changes must reach every edge device: manual updates become a second "
        "full-time job.",
        "Automate staged rollouts with rollback before the first site goes live.",
    ),
    RiskRule(
        "risk.large_model_at_edge",
        ((_LOCAL, _c("model_complexity", Op.EQ, ModelComplexity.LARGE.value)),),
        "A large model at the edge risks INT8 accuracy loss and thermal throttling.",
        "Measure the INT8 accuracy drop and sustained latency after 10 and 20 minutes.",
    ),
    RiskRule(
        "risk.cloud_path_offline",
        ((_c("cloud_inference", Op.EQ, True), _c("partial_local_required", Op.EQ, True)),),
        "The cloud part of the workflow stops during outages.",
        "Offline-first UX: the local path must complete the workflow on its own.",
    ),
    RiskRule(
        "risk.streaming_everything",
        (
            (
                _c("primary", Op.EQ, Tier.CLOUD.value),
                _c("site_upload_mbps", Op.GE, _T.heavy_upload_mbps),
            ),
        ),
        "Cloud primary with heavy raw uploads: the \u201cwe streamed everything to cloud\u201d "
        "failure mode.",
        "Design data minimisation: send predictions and events, not raw media.",
    ),
    RiskRule(
        "risk.cloud_round_trip",
        (
            (
                _c("primary", Op.EQ, Tier.CLOUD.value),
                _c("latency_tolerance_ms", Op.LT, _T.cloud_round_trip_risk_ms),
            ),
        ),
        "Cloud inference close to the latency tolerance: upload and queueing can push P95 "
        "time-to-action past it.",
        "Measure end-to-end P95 (capture \u2192 inference \u2192 UI) from a real site early.",
    ),
    RiskRule(
        "risk.phi",
        ((_c("phi_involved", Op.EQ, True),),),
        "PHI exposure through stored inputs, logs or uploads.",
        "Encryption at rest and in transit, signed artifacts, audit logs, access controls; "
        "upload only de-identified results.",
    ),
    RiskRule(
        "risk.phi_answered_low",
        ((_c("phi_involved", Op.EQ, True), _c("privacy_risk", Op.EQ, PrivacyRisk.LOW.value)),),
        "PHI is involved but privacy risk was answered low: the rules treat it as high.",
        "Revisit the privacy answer with whoever owns compliance.",
    ),
    RiskRule(
        "risk.fleet_scale",
        ((_LOCAL, _c("sites", Op.GE, _T.many_sites)),),
        "Many sites with local inference: manual device interventions will not scale.",
        "Fleet management with staged rollouts and remote diagnosis before the third site.",
    ),
)


def _risks(decision: _Decision) -> tuple[Risk, ...]:
    facts = dict(decision.facts)
    facts.update(
        local_inference=any(tier in LOCAL_TIERS for tier in decision.inference_tiers),
        cloud_inference=Tier.CLOUD in decision.inference_tiers,
        has_hardware=bool(facts["hardware"]),
    )
    return tuple(
        Risk(rule.id, rule.text, rule.mitigation)
        for rule in RISK_RULES
        if any(all(cond.holds(facts) for cond in group) for group in rule.when)
    )


# --- What would change this answer ---------------------------------------------------------------


def _threshold_conditions() -> list[Condition]:
    seen: dict[tuple[str, Op, Any], Condition] = {}
    for rule in RULES:
        for group in rule.when:
            for cond in group:
                if cond.op in (Op.LT, Op.LE, Op.GE, Op.GT):
                    seen.setdefault((cond.fact, cond.op, cond.value), cond)
    return list(seen.values())


def _counterfactual(value: float, cond: Condition, spec: NumericAnswerSpec) -> tuple[float, str]:
    """The value just across ``cond``'s threshold from ``value``, and how to say it."""
    threshold = float(cond.value)  # type: ignore[arg-type]
    step = spec.resolution
    holds = cond.holds({cond.fact: value})
    shown = _with_unit(threshold, spec.unit)
    match cond.op, holds:
        case Op.LT, True:
            return threshold, f"were {shown} or more"
        case Op.LT, False:
            return threshold - step, f"were below {shown}"
        case Op.LE, True:
            return threshold + step, f"were more than {shown}"
        case Op.LE, False:
            return threshold, f"were {shown} or less"
        case Op.GE, True:
            return threshold - step, f"were below {shown}"
        case Op.GE, False:
            return threshold, f"were {shown} or more"
        case Op.GT, True:
            return threshold, f"were {shown} or less"
        case _:
            return threshold + step, f"were more than {shown}"


def _what_would_change(answers: WizardAnswers, base: _Decision) -> tuple[WhatIf, ...]:
    before = _describe_tiers(base.inference_tiers, base.optional_tiers)
    numeric: dict[tuple[str, str], WhatIf] = {}

    def consider(name: str, threshold: float, candidate: float, phrase: str) -> None:
        spec = NUMERIC_ANSWERS[name]
        current = getattr(answers, name)
        if spec.integer:
            candidate = round(candidate)
        if not spec.minimum <= candidate <= spec.maximum or candidate == current:
            return
        changed = replace(answers, **{name: int(candidate) if spec.integer else candidate})
        decision = _decide_core(changed)
        if decision.key == base.key:
            return
        after = _describe_tiers(decision.inference_tiers, decision.optional_tiers)
        scale = max(abs(current), abs(threshold), 1e-12)
        distance = abs(candidate - current) / scale
        direction = "rise" if candidate > current else "fall"
        sentence = (
            f"If {spec.label} {phrase} (now {_with_unit(current, spec.unit)}), the answer "
            f"would be {after} instead of {before}."
        )
        item = WhatIf(
            answer=name,
            label=spec.label,
            current=current,
            threshold=threshold,
            counterfactual=candidate,
            new_placement=decision.placement,
            new_tiers=decision.inference_tiers,
            sentence=sentence,
            distance=distance,
        )
        key = (name, direction)
        if key not in numeric or distance < (numeric[key].distance or math.inf):
            numeric[key] = item

    for cond in _threshold_conditions():
        if cond.fact in NUMERIC_ANSWERS:
            spec = NUMERIC_ANSWERS[cond.fact]
            candidate, phrase = _counterfactual(getattr(answers, cond.fact), cond, spec)
            consider(cond.fact, float(cond.value), candidate, phrase)  # type: ignore[arg-type]
        elif cond.fact == "site_upload_mbps" and answers.payload_kb > 0:
            # The upload is linear in payload size: move the payload across the threshold.
            upload = answers.site_upload_mbps
            if upload <= 0:
                continue
            boundary_kb = answers.payload_kb * float(cond.value) / upload  # type: ignore[arg-type]
            step = NUMERIC_ANSWERS["payload_kb"].resolution
            shown = _with_unit(boundary_kb, "KB")
            if cond.holds(base.facts):
                candidate = math.floor(boundary_kb / step) * step
                if candidate >= boundary_kb:
                    candidate -= step
                phrase = f"were below {shown}"
            else:
                candidate = math.ceil(boundary_kb / step) * step
                phrase = f"were {shown} or more"
            consider("payload_kb", boundary_kb, round(candidate, 6), phrase)

    choices: list[WhatIf] = []

    def consider_choice(name: str, label: str, changed: WizardAnswers, phrase: str) -> None:
        decision = _decide_core(changed)
        if decision.key == base.key:
            return
        after = _describe_tiers(decision.inference_tiers, decision.optional_tiers)
        choices.append(
            WhatIf(
                answer=name,
                label=label,
                current=getattr(answers, name),
                threshold=None,
                counterfactual=getattr(changed, name),
                new_placement=decision.placement,
                new_tiers=decision.inference_tiers,
                sentence=f"If {phrase}, the answer would be {after} instead of {before}.",
                distance=None,
            )
        )

    for risk in PrivacyRisk:
        if risk is not answers.privacy_risk:
            consider_choice(
                "privacy_risk",
                "privacy risk",
                replace(answers, privacy_risk=risk),
                f"privacy risk were {risk.value} (now {answers.privacy_risk.value})",
            )
    consider_choice(
        "phi_involved",
        "PHI involved",
        replace(answers, phi_involved=not answers.phi_involved),
        "PHI were not involved" if answers.phi_involved else "PHI were involved",
    )
    for complexity in ModelComplexity:
        if complexity is not answers.model_complexity:
            consider_choice(
                "model_complexity",
                "model complexity",
                replace(answers, model_complexity=complexity),
                f"the model were {complexity.value} (now {answers.model_complexity.value})",
            )
    for item in (
        ExistingHardware.PHONES_TABLETS,
        ExistingHardware.WINDOWS_NPU_FLEET,
        ExistingHardware.JETSON_CLASS,
        ExistingHardware.SITE_GATEWAY,
    ):
        present = item in answers.hardware
        hardware = tuple(h for h in answers.hardware if h is not item)
        if not present:
            hardware = (*hardware, item)
        label = HARDWARE_LABELS[item]
        consider_choice(
            "existing_hardware",
            "existing hardware",
            replace(answers, existing_hardware=hardware),
            f"you {'did not have' if present else 'had'} {label}",
        )

    ordered = sorted(numeric.values(), key=lambda item: (item.distance, item.answer))
    return tuple(ordered) + tuple(choices)


def decide(*, answers: WizardAnswers) -> WizardResult:
    """Run the versioned rules on validated answers and explain the placement.

    Raises :class:`PlanningInputError` when an answer is out of range.
    """
    validate_answers(answers=answers)
    decision = _decide_core(answers)
    cloud_allowed = bool(decision.facts["cloud_allowed"])
    pattern = REFERENCE_ARCHITECTURES.get(answers.workflow)
    note = ""
    if pattern is None:
        architecture = _generic_architecture(tiers=decision.inference_tiers)
    else:
        architecture = pattern
        if decision.inference_tiers[0] not in pattern.primary_tiers:
            note = (
                f"Your answers lead to {_describe_tiers(decision.inference_tiers)}, which "
                f"differs from the playbook's pattern for this workflow ({pattern.recommended}); "
                "the pattern is shown for its data flow and operational controls."
            )
    return WizardResult(
        ruleset_version=RULESET_VERSION,
        answers=answers,
        placement=decision.placement,
        inference_tiers=decision.inference_tiers,
        summary=_summary(decision, cloud_allowed=cloud_allowed),
        parts=_parts(decision, cloud_allowed=cloud_allowed),
        findings=_findings(decision),
        architecture=architecture,
        architecture_note=note,
        risks=_risks(decision),
        what_would_change=_what_would_change(answers, decision),
    )


def rule_table() -> list[dict[str, Any]]:
    """The ruleset as rows for a help page or an audit: id, part, effect, thresholds, why."""
    rows = []
    for rule in RULES:
        conditions = " or ".join(
            " and ".join(f"{cond.fact} {cond.op.value} {cond.value}" for cond in group)
            for group in rule.when
        )
        rows.append(
            {
                "id": rule.id,
                "title": rule.title,
                "part": str(rule.part),
                "effect": str(rule.effect),
                "weight": rule.weight,
                "when": conditions or "always",
                "rationale": rule.rationale,
                "source": rule.source,
            }
        )
    return rows


__all__ = [
    "CHANGE_FREQUENCY_PER_YEAR",
    "HARDWARE_LABELS",
    "LOCAL_TIERS",
    "REFERENCE_ARCHITECTURES",
    "RULES",
    "RULESET_VERSION",
    "THRESHOLDS",
    "TIER_LABELS",
    "TIER_PLACES",
    "ExistingHardware",
    "ModelComplexity",
    "Placement",
    "PlacementPart",
    "PlanningInputError",
    "PrivacyRisk",
    "ReferenceArchitecture",
    "Risk",
    "Rule",
    "RuleFinding",
    "Tier",
    "WhatIf",
    "WizardAnswers",
    "WizardResult",
    "Workflow",
    "decide",
    "raise_for_field_errors",
    "rule_table",
    "validate_answers",
]
