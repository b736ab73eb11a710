"""Forms of the planning pages, one module per screen as in ``roi.views``.

Ranges and consistency rules live in the pure modules (``roi.rules``, ``roi.engine``,
``roi.scorecard``, ``roi.plan``); the forms only turn posted text into their input shape and put
their per-field reasons back next to the right input. Every form keeps the raw text that was
posted, so an error never loses what the user typed. ``from roi.forms import X`` keeps working
for every form.
"""

from .common import ErrorSlot, slot_id
from .plans import PlanTargetsForm
from .scenarios import CalculatorForm, EstimateRow, InputGroup, SectionGroup
from .scorecards import CandidateColumn, ScorecardForm, ScoreCell
from .wizard import (
    REQUIRED_STEP_KEYS,
    STEP_BY_KEY,
    WIZARD_STEPS,
    WORKFLOW_HINTS,
    ResultStep,
    WizardStep,
    WizardStepForm,
)

__all__ = [
    "REQUIRED_STEP_KEYS",
    "STEP_BY_KEY",
    "WIZARD_STEPS",
    "WORKFLOW_HINTS",
    "CalculatorForm",
    "CandidateColumn",
    "ErrorSlot",
    "EstimateRow",
    "InputGroup",
    "PlanTargetsForm",
    "ResultStep",
    "ScoreCell",
    "ScorecardForm",
    "SectionGroup",
    "WizardStep",
    "WizardStepForm",
    "slot_id",
]
