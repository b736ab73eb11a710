"""Serializers of the planning API.

The JSON bodies inside (answers, results, candidates, inputs, plans) have exactly the shape of
the pure modules' ``to_dict()``; they are validated by those modules (through the services),
not restated here, so the API, the pages and the stored rows cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from roi.engine import Distribution
from roi.models import Assessment, Plan, RoiScenario, Scorecard, Workflow
from roi.plan import TaskStatus
from roi.scorecard import PlanningInputError
from roi.scorecard import Scorecard as PureScorecard

PLACEMENT_HELP = "on_device | near_edge | cloud | hybrid"


class _UsernameField(serializers.CharField):
    def to_representation(self, value: Any) -> str:
        return value.get_username() if value is not None else ""


# --- Assessments --------------------------------------------------------------------------------


class AssessmentSerializer(serializers.ModelSerializer):
    placement = serializers.CharField(read_only=True, help_text=PLACEMENT_HELP)
    answers = serializers.JSONField(read_only=True, help_text="WizardAnswers.to_dict()")
    result = serializers.JSONField(read_only=True, help_text="WizardResult.to_dict()")
    created_by = _UsernameField(read_only=True)

    class Meta:
        model = Assessment
        fields = [
            "id",
            "name",
            "workflow",
            "placement",
            "ruleset_version",
            "answers",
            "result",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AnswersSerializer(serializers.Serializer):
    answers = serializers.JSONField(
        help_text="The wizard answers: workflow, latency_tolerance_ms, offline_share (0-1), "
        "longest_outage_hours, privacy_risk, phi_involved, model_changes_per_year (number or "
        "daily/weekly/monthly/quarterly/...), devices_per_site, sites, payload_kb, "
        "inferences_per_device_per_minute, model_complexity, existing_hardware."
    )


class AssessmentCreateSerializer(AnswersSerializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class RenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)


class DecisionSerializer(serializers.Serializer):
    result = serializers.JSONField(help_text="WizardResult.to_dict(); nothing is saved")


# --- Scorecards -------------------------------------------------------------------------------


class ScorecardSerializer(serializers.ModelSerializer):
    candidates = serializers.JSONField(read_only=True)
    weights = serializers.JSONField(read_only=True)
    ranking = serializers.SerializerMethodField()
    created_by = _UsernameField(read_only=True)

    class Meta:
        model = Scorecard
        fields = [
            "id",
            "name",
            "assessment",
            "candidates",
            "weights",
            "red_flags_rank_last",
            "ranking",
            "revision",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.JSONField()))
    def get_ranking(self, obj: Scorecard) -> list[dict[str, Any]]:
        try:
            return [row.to_dict() for row in PureScorecard.from_dict(obj.as_dict()).rank()]
        except PlanningInputError:
            return []


class ScorecardWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    assessment = serializers.IntegerField(required=False, allow_null=True, default=None)
    candidates = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        help_text="[{name, hardware, runtime, toolchain, scores: {category: {score, evidence}}}]",
    )
    weights = serializers.JSONField(required=False, help_text="{category: weight >= 0}")
    red_flags_rank_last = serializers.BooleanField(
        required=False,
        help_text="A red flag on update strategy or observability ranks a stack below every "
        "flag-free one (default true).",
    )
    revision = serializers.IntegerField(
        required=False, help_text="The revision you edited; a newer one answers 409."
    )


# --- Scenarios --------------------------------------------------------------------------------


class ScenarioSerializer(serializers.ModelSerializer):
    inputs = serializers.JSONField(read_only=True, help_text="RoiInputs.to_dict()")
    summary = serializers.JSONField(read_only=True, help_text="Headline figures at last save")
    best_placement = serializers.CharField(read_only=True, help_text=PLACEMENT_HELP)
    created_by = _UsernameField(read_only=True)
    currency = serializers.CharField(
        source="organization.currency",
        read_only=True,
        help_text="ISO 4217 code of every money figure (the organisation's currency)",
    )

    class Meta:
        model = RoiScenario
        fields = [
            "id",
            "name",
            "currency",
            "workflow",
            "assessment",
            "cloned_from",
            "inputs",
            "summary",
            "best_placement",
            "revision",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ScenarioWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    workflow = serializers.ChoiceField(choices=Workflow.choices, required=False, allow_blank=True)
    assessment = serializers.IntegerField(required=False, allow_null=True, default=None)
    inputs = serializers.JSONField(
        required=False, help_text="RoiInputs.to_dict(): {name, scenario, estimates}"
    )
    revision = serializers.IntegerField(required=False)


class CloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class ComputeSerializer(serializers.Serializer):
    inputs = serializers.JSONField(
        required=False, help_text="RoiInputs.to_dict(); or give a workflow to use its preset"
    )
    workflow = serializers.ChoiceField(choices=Workflow.choices, required=False)
    placement = serializers.CharField(
        required=False, allow_blank=True, help_text=f"Tornado for this placement ({PLACEMENT_HELP})"
    )
    draws = serializers.IntegerField(min_value=100, max_value=100_000, default=10_000)
    seed = serializers.IntegerField(min_value=0, default=0)
    distribution = serializers.ChoiceField(
        choices=[(d.value, d.value) for d in Distribution], default=Distribution.PERT.value
    )


class ComputeResultSerializer(serializers.Serializer):
    inputs = serializers.JSONField(help_text="The validated inputs")
    summary = serializers.JSONField(help_text="Per placement NPV, TCO, payback, P10/P50/P90")
    analysis = serializers.JSONField(help_text="Deterministic economics, Monte Carlo, tornado")


class PresetSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    inputs = serializers.JSONField(help_text="RoiInputs.to_dict(), every default with its source")


# --- Plans ------------------------------------------------------------------------------------


class PlanSerializer(serializers.ModelSerializer):
    placement = serializers.CharField(read_only=True, help_text=PLACEMENT_HELP)
    data = serializers.JSONField(read_only=True, help_text="NinetyDayPlan.to_dict()")
    targets = serializers.JSONField(read_only=True, help_text="MetricTargets.to_dict()")
    assignees = serializers.JSONField(read_only=True, help_text="task id -> user id")
    progress = serializers.SerializerMethodField()
    created_by = _UsernameField(read_only=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "assessment",
            "scenario",
            "placement",
            "data",
            "targets",
            "assignees",
            "progress",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.JSONField(help_text="{done, total}"))
    def get_progress(self, obj: Plan) -> dict[str, int]:
        done, total = obj.progress
        return {"done": done, "total": total}


class PlanDetailSerializer(PlanSerializer):
    measured = serializers.SerializerMethodField()

    class Meta(PlanSerializer.Meta):
        fields = [*PlanSerializer.Meta.fields, "measured"]
        read_only_fields = fields

    @extend_schema_field(
        serializers.JSONField(
            help_text="Planned vs measured: {metrics: [MetricStatus with decided_by, the deciding "
            "measurement and a reference of the other provenance], connected_sources: "
            "[{key, provenance}], field_measurements: [every field Measurement collected for "
            "the plan, metric or not, with its sites, device_count and window], "
            "roi: PlannedVsMeasured}"
        )
    )
    def get_measured(self, obj: Plan) -> dict[str, Any]:
        measured = self.context["measured"]
        return {
            "metrics": [status.to_dict() for status in measured.statuses],
            "connected_sources": [
                {"key": key, "provenance": str(provenance)}
                for key, provenance in measured.connected
            ],
            "field_measurements": [m.to_dict() for m in measured.field_measurements],
            "roi": measured.roi.to_dict() if measured.roi is not None else None,
        }


class PlanCreateSerializer(serializers.Serializer):
    assessment = serializers.IntegerField()
    scenario = serializers.IntegerField(required=False, allow_null=True, default=None)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    targets = serializers.JSONField(required=False, help_text="MetricTargets fields to override")


class PlanUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    targets = serializers.JSONField(required=False, help_text="MetricTargets fields to change")
    scenario = serializers.IntegerField(required=False, allow_null=True)


class TaskUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[(s.value, s.value) for s in TaskStatus], required=False
    )
    assignee = serializers.IntegerField(
        required=False, allow_null=True, help_text="User id of a member; null clears"
    )
