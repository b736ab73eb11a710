"""Audit verbs of planning: assessments, scorecards, ROI scenarios and 90-day plans."""

from __future__ import annotations

from opshero.audit import AuditVerb


class RoiVerb(AuditVerb):
    """What ``roi.services`` records; values are stored as they are."""

    ASSESSMENT_CREATED = "assessment.created"
    ASSESSMENT_RENAMED = "assessment.renamed"
    ASSESSMENT_DELETED = "assessment.deleted"
    SCORECARD_CREATED = "scorecard.created"
    SCORECARD_UPDATED = "scorecard.updated"
    SCORECARD_DELETED = "scorecard.deleted"
    SCENARIO_CREATED = "scenario.created"
    SCENARIO_CLONED = "scenario.cloned"
    SCENARIO_UPDATED = "scenario.updated"
    SCENARIO_DELETED = "scenario.deleted"
    PLAN_CREATED = "plan.created"
    PLAN_UPDATED = "plan.updated"
    PLAN_DELETED = "plan.deleted"
    PLAN_TASK_STATUS_CHANGED = "plan.task_status_changed"
    PLAN_TASK_ASSIGNED = "plan.task_assigned"
