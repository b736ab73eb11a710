"""Saved planning work: assessments, stack scorecards, ROI scenarios and 90-day plans.

Every JSON column holds exactly what the pure modules produce with ``to_dict()`` and read back
with ``from_dict()`` (``roi.rules``, ``roi.scorecard``, ``roi.engine``, ``roi.plan``), so a
shape is defined once and never translated twice. A few values are copied out of the JSON
into real columns (placement, workflow, best placement) because list pages filter and sort on
them and must not parse JSON row by row.

``revision`` counts saved edits of the objects two planners may edit at the same time;
services refuse an edit made against an older revision (409) instead of silently overwriting
the other person's work.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from opshero.models import Organization

from .rules import Placement as RulePlacement
from .rules import Workflow as RuleWorkflow


class Workflow(models.TextChoices):
    LOGISTICS_DOCK_VISION = RuleWorkflow.LOGISTICS_DOCK_VISION.value, "Logistics: dock vision"
    FIELD_SERVICE_TRIAGE = RuleWorkflow.FIELD_SERVICE_TRIAGE.value, "Field service: triage"
    HEALTHCARE_DECISION_SUPPORT = (
        RuleWorkflow.HEALTHCARE_DECISION_SUPPORT.value,
        "Healthcare: decision support",
    )
    CUSTOM = RuleWorkflow.CUSTOM.value, "Custom workflow"


class Placement(models.TextChoices):
    ON_DEVICE = RulePlacement.ON_DEVICE.value, "On-device"
    NEAR_EDGE = RulePlacement.NEAR_EDGE.value, "Near-edge"
    CLOUD = RulePlacement.CLOUD.value, "Cloud"
    HYBRID = RulePlacement.HYBRID.value, "Hybrid"


class Assessment(models.Model):
    """One run of the decision wizard: the answers and the placement they led to.

    The result is stored as it was decided (with its ruleset version) rather than recomputed
    on display, so a shared link keeps saying what it said when the decision was taken even
    after the rules change.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="assessments"
    )
    name = models.CharField(max_length=120)
    workflow = models.CharField(max_length=40, choices=Workflow.choices)
    answers = models.JSONField(help_text="roi.rules.WizardAnswers.to_dict()")
    result = models.JSONField(help_text="roi.rules.WizardResult.to_dict()")
    placement = models.CharField(max_length=16, choices=Placement.choices)
    ruleset_version = models.CharField(max_length=20)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(placement__in=Placement.values), name="assessment_placement_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Scorecard(models.Model):
    """Candidate stacks scored on the seed's eight categories, with the planner's weights.

    ``candidates`` and ``weights`` are the two keys of ``roi.scorecard.Scorecard.to_dict()``.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scorecards"
    )
    name = models.CharField(max_length=120)
    assessment = models.ForeignKey(
        Assessment, on_delete=models.SET_NULL, null=True, blank=True, related_name="scorecards"
    )
    candidates = models.JSONField(default=list)
    weights = models.JSONField(default=dict)
    # The seed: a stack scoring low on update strategy or observability "will cost you later";
    # such a stack ranks below every flag-free one unless the planner turns this off.
    red_flags_rank_last = models.BooleanField(default=True)
    revision = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-updated_at"])]

    def __str__(self) -> str:
        return self.name

    def as_dict(self) -> dict:
        """The ``roi.scorecard.Scorecard.from_dict`` shape."""
        return {
            "candidates": self.candidates,
            "weights": self.weights,
            "red_flags_rank_last": self.red_flags_rank_last,
        }


class RoiScenario(models.Model):
    """A saved ROI/TCO scenario: every input as low / likely / high with its source.

    ``summary`` caches the headline figures of the last save (per placement NPV, TCO, payback,
    P10/P50/P90) so the list and compare pages never rerun a 10,000-draw Monte Carlo per row;
    the scenario page recomputes everything live.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="roi_scenarios"
    )
    name = models.CharField(max_length=120)
    workflow = models.CharField(
        max_length=40, choices=Workflow.choices, blank=True, help_text="The preset it started from"
    )
    inputs = models.JSONField(help_text="roi.engine.RoiInputs.to_dict()")
    summary = models.JSONField(default=dict, blank=True)
    best_placement = models.CharField(max_length=16, choices=Placement.choices, blank=True)
    assessment = models.ForeignKey(
        Assessment, on_delete=models.SET_NULL, null=True, blank=True, related_name="scenarios"
    )
    cloned_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="clones"
    )
    revision = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-updated_at"])]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """The 90-day plan generated from an assessment: phases, tasks, success metrics.

    ``data`` is ``roi.plan.NinetyDayPlan.to_dict()`` (task statuses live inside it);
    ``targets`` is the ``MetricTargets.to_dict()`` the metrics were set from; ``assignees``
    maps a task id to the user who owns it, because a person is not part of the pure plan.
    ``start_date`` is day 1 of the plan: day N of a task or phase falls on start + N - 1.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=120)
    # RESTRICT, not PROTECT: an assessment cannot be deleted while a plan uses it, yet an
    # organisation being deleted takes both with it.
    assessment = models.ForeignKey(Assessment, on_delete=models.RESTRICT, related_name="plans")
    scenario = models.ForeignKey(
        RoiScenario, on_delete=models.SET_NULL, null=True, blank=True, related_name="plans"
    )
    # The model whose validation reports measure this plan's metrics (none: not measured).
    model = models.ForeignKey(
        "modelregistry.MlModel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    placement = models.CharField(max_length=16, choices=Placement.choices)
    data = models.JSONField(help_text="roi.plan.NinetyDayPlan.to_dict()")
    targets = models.JSONField(default=dict, help_text="roi.plan.MetricTargets.to_dict()")
    assignees = models.JSONField(default=dict, blank=True, help_text="task id -> user id")
    start_date = models.DateField(default=timezone.localdate, help_text="Day 1 of the plan")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(placement__in=Placement.values), name="plan_placement_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tasks(self) -> list[dict]:
        return [task for phase in self.data.get("phases", []) for task in phase["tasks"]]

    @property
    def progress(self) -> tuple[int, int]:
        """(done, total) tasks, for list pages (read from the JSON already loaded)."""
        tasks = self.tasks
        return sum(task["status"] == "done" for task in tasks), len(tasks)
