"""Organisation-scoped planning API: assessments, scorecards, ROI scenarios, 90-day plans.

Thin: parse the envelope, resolve ids through org-scoped selectors (another organisation's id
is a 404), call the service, answer with the stored row. Reads are open to every member,
writes need ``Action.EDIT_PLANS``; the two stateless computations (decide, compute) change
nothing and are open to every member.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from opshero.actors import Actor
from opshero.api.scoping import OrgScopedMixin
from opshero.errors import InvalidInput
from opshero.roles import Action

from .. import selectors, services
from ..engine import analyse
from ..measurements import planned_vs_measured
from ..presets import PRESET_WORKFLOWS, preset_for
from ..reports import scenario_summary
from ..rules import Placement, WizardAnswers, decide
from . import serializers as s

EDIT = {
    "POST": Action.EDIT_PLANS,
    "PATCH": Action.EDIT_PLANS,
    "PUT": Action.EDIT_PLANS,
    "DELETE": Action.EDIT_PLANS,
}

DOCK_ANSWERS = {
    "workflow": "logistics_dock_vision",
    "latency_tolerance_ms": 150,
    "offline_share": 0.02,
    "longest_outage_hours": 4,
    "privacy_risk": "medium",
    "model_changes_per_year": "quarterly",
    "devices_per_site": 6,
    "sites": 3,
    "payload_kb": 400,
    "inferences_per_device_per_minute": 2,
    "model_complexity": "medium",
    "existing_hardware": ["phones_tablets", "jetson_class"],
}


def _actor(request) -> Actor:
    return Actor.from_request(request)


def _payload(serializer_class, data, **kwargs) -> dict[str, Any]:
    body = serializer_class(data=data, **kwargs)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def _found(obj: Any, what: str) -> Any:
    if obj is None:
        raise NotFound(f"No such {what}.")
    return obj


def _reference(finder, org, pk: int | None, field: str) -> Any:
    """An id in the body that must name an object of this organisation (else 422)."""
    if pk is None:
        return None
    obj = finder(org=org, pk=pk)
    if obj is None:
        raise InvalidInput(f"No such {field} in this organisation.", fields={field: ["Not found."]})
    return obj


# --- Assessments --------------------------------------------------------------------------------


class AssessmentListView(OrgScopedMixin, generics.ListAPIView):
    """Saved assessments, newest first. POST decides the placement and saves it."""

    serializer_class = s.AssessmentSerializer
    required_actions = EDIT

    def get_queryset(self):
        return selectors.assessments_for_org(org=self.org)

    @extend_schema(
        request=s.AssessmentCreateSerializer,
        responses={201: s.AssessmentSerializer},
        examples=[
            OpenApiExample(
                "logistics dock",
                request_only=True,
                value={"name": "Docks", "answers": DOCK_ANSWERS},
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.AssessmentCreateSerializer, request.data)
        assessment = services.create_assessment(
            organization=self.org, actor=_actor(request), answers=data["answers"], name=data["name"]
        )
        return Response(s.AssessmentSerializer(assessment).data, status=status.HTTP_201_CREATED)


class AssessmentDecideView(OrgScopedMixin, APIView):
    """Decide the placement for answers without saving anything (the wizard's preview)."""

    @extend_schema(
        request=s.AnswersSerializer,
        responses=s.DecisionSerializer,
        examples=[
            OpenApiExample("logistics dock", request_only=True, value={"answers": DOCK_ANSWERS})
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.AnswersSerializer, request.data)
        # WizardAnswers.from_dict refuses answers that are not an object, as POST assessments/.
        with services.planning_input():
            result = decide(answers=WizardAnswers.from_dict(data["answers"]))
        return Response({"result": result.to_dict()})


class AssessmentDetailView(OrgScopedMixin, APIView):
    required_actions = EDIT

    def _assessment(self, assessment_id: int):
        return _found(selectors.assessment_for_org(org=self.org, pk=assessment_id), "assessment")

    @extend_schema(responses=s.AssessmentSerializer)
    def get(self, request, org: str, assessment_id: int):
        return Response(s.AssessmentSerializer(self._assessment(assessment_id)).data)

    @extend_schema(
        request=s.RenameSerializer,
        responses=s.AssessmentSerializer,
        description="Only the name changes: the answers and result stay as decided.",
    )
    def patch(self, request, org: str, assessment_id: int):
        data = _payload(s.RenameSerializer, request.data)
        assessment = services.rename_assessment(
            assessment=self._assessment(assessment_id), actor=_actor(request), name=data["name"]
        )
        return Response(s.AssessmentSerializer(assessment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, assessment_id: int):
        services.delete_assessment(
            assessment=self._assessment(assessment_id), actor=_actor(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Scorecards -------------------------------------------------------------------------------

SCORECARD_EXAMPLE = {
    "name": "Dock stacks",
    "candidates": [
        {
            "name": "Jetson Orin gateway",
            "hardware": "Jetson Orin Nano",
            "runtime": "TensorRT",
            "toolchain": "ONNX export",
            "scores": {
                "model_compatibility": {"score": 4, "evidence": "one custom op replaced"},
                "performance": {"score": 5, "evidence": "P95 38 ms at 720p"},
                "quantization": {"score": 4, "evidence": "INT8 drop 0.8 points"},
                "power_thermal": {"score": 4, "evidence": "no throttling after 20 min"},
                "offline": {"score": 5, "evidence": ""},
                "update_strategy": {"score": 4, "evidence": "staged, signed"},
                "observability": {"score": 4, "evidence": ""},
                "security": {"score": 4, "evidence": ""},
            },
        }
    ],
    "weights": {"update_strategy": 1.5, "observability": 1.5},
}


class ScorecardListView(OrgScopedMixin, generics.ListAPIView):
    """Stack scorecards with their ranking and red flags. POST saves one."""

    serializer_class = s.ScorecardSerializer
    required_actions = EDIT

    def get_queryset(self):
        return selectors.scorecards_for_org(org=self.org)

    @extend_schema(
        request=s.ScorecardWriteSerializer,
        responses={201: s.ScorecardSerializer},
        examples=[OpenApiExample("one candidate", request_only=True, value=SCORECARD_EXAMPLE)],
    )
    def post(self, request, org: str):
        data = _payload(s.ScorecardWriteSerializer, request.data)
        assessment = _reference(
            selectors.assessment_for_org, self.org, data.get("assessment"), "assessment"
        )
        scorecard = services.create_scorecard(
            organization=self.org,
            actor=_actor(request),
            name=data.get("name", ""),
            candidates=data.get("candidates") or [],
            weights=data.get("weights"),
            red_flags_rank_last=data.get("red_flags_rank_last", True),
            assessment=assessment,
        )
        return Response(s.ScorecardSerializer(scorecard).data, status=status.HTTP_201_CREATED)


class ScorecardDetailView(OrgScopedMixin, APIView):
    required_actions = EDIT

    def _scorecard(self, scorecard_id: int):
        return _found(selectors.scorecard_for_org(org=self.org, pk=scorecard_id), "scorecard")

    @extend_schema(responses=s.ScorecardSerializer)
    def get(self, request, org: str, scorecard_id: int):
        return Response(s.ScorecardSerializer(self._scorecard(scorecard_id)).data)

    @extend_schema(request=s.ScorecardWriteSerializer, responses=s.ScorecardSerializer)
    def patch(self, request, org: str, scorecard_id: int):
        data = _payload(s.ScorecardWriteSerializer, request.data, partial=True)
        scorecard = services.update_scorecard(
            scorecard=self._scorecard(scorecard_id),
            actor=_actor(request),
            name=data.get("name"),
            candidates=data.get("candidates"),
            weights=data.get("weights"),
            red_flags_rank_last=data.get("red_flags_rank_last"),
            expected_revision=data.get("revision"),
        )
        return Response(s.ScorecardSerializer(scorecard).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, scorecard_id: int):
        services.delete_scorecard(scorecard=self._scorecard(scorecard_id), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Scenarios --------------------------------------------------------------------------------


class ScenarioListView(OrgScopedMixin, generics.ListAPIView):
    """ROI scenarios with their cached headline figures. POST saves one."""

    serializer_class = s.ScenarioSerializer
    required_actions = EDIT

    def get_queryset(self):
        return selectors.scenarios_for_org(org=self.org)

    @extend_schema(
        request=s.ScenarioWriteSerializer,
        responses={201: s.ScenarioSerializer},
        description="Give `inputs` (RoiInputs.to_dict(), e.g. from the presets endpoint) or "
        "only a `workflow` to save its preset as it is.",
        examples=[
            OpenApiExample(
                "from a preset",
                request_only=True,
                value={"name": "Dock pilot", "workflow": "logistics_dock_vision"},
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.ScenarioWriteSerializer, request.data)
        assessment = _reference(
            selectors.assessment_for_org, self.org, data.get("assessment"), "assessment"
        )
        inputs = data.get("inputs")
        workflow = data.get("workflow") or ""
        if inputs is None:
            if workflow not in PRESET_WORKFLOWS:
                raise InvalidInput(
                    "Give the inputs, or a workflow whose preset to start from.",
                    fields={"inputs": ["Required without a preset workflow."]},
                )
            inputs = preset_for(workflow)[0].to_dict()
        scenario = services.create_scenario(
            organization=self.org,
            actor=_actor(request),
            name=data.get("name", ""),
            inputs=inputs,
            assessment=assessment,
            workflow=workflow,
        )
        return Response(s.ScenarioSerializer(scenario).data, status=status.HTTP_201_CREATED)


class ScenarioComputeView(OrgScopedMixin, APIView):
    """Validate inputs and return every figure, saving nothing (the live calculator's maths)."""

    @extend_schema(
        request=s.ComputeSerializer,
        responses=s.ComputeResultSerializer,
        examples=[
            OpenApiExample(
                "a preset, 2,000 draws",
                request_only=True,
                value={
                    "workflow": "logistics_dock_vision",
                    "draws": 2000,
                    "placement": "near_edge",
                },
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.ComputeSerializer, request.data)
        if data.get("inputs") is None:
            if data.get("workflow") not in PRESET_WORKFLOWS:
                raise InvalidInput(
                    "Give the inputs, or a workflow whose preset to compute.",
                    fields={"inputs": ["Required without a preset workflow."]},
                )
            inputs = preset_for(data["workflow"])[0]
        else:
            inputs = services.parse_inputs(data["inputs"])
        placement = None
        if data.get("placement"):
            try:
                placement = Placement(data["placement"])
            except ValueError:
                raise InvalidInput(
                    "Unknown placement.", fields={"placement": [s.PLACEMENT_HELP]}
                ) from None
        with services.planning_input():
            analysis = analyse(
                inputs=inputs,
                placement=placement,
                draws=data["draws"],
                seed=data["seed"],
                distribution=data["distribution"],
            )
        return Response(
            {
                "currency": self.org.currency,
                "inputs": inputs.to_dict(),
                "summary": scenario_summary(analysis),
                "analysis": analysis.to_dict(),
            }
        )


class ScenarioPresetView(OrgScopedMixin, APIView):
    """A workflow's preset inputs, each default with its source, to edit and save or compute."""

    @extend_schema(responses=s.PresetSerializer)
    def get(self, request, org: str, workflow: str):
        if workflow not in PRESET_WORKFLOWS:
            raise NotFound("No preset for this workflow.")
        inputs, _note = preset_for(workflow)
        return Response({"workflow": workflow, "inputs": inputs.to_dict()})


class _ScenarioLookup:
    def _scenario(self, scenario_id: int):
        return _found(selectors.scenario_for_org(org=self.org, pk=scenario_id), "scenario")


class ScenarioDetailView(_ScenarioLookup, OrgScopedMixin, APIView):
    required_actions = EDIT

    @extend_schema(responses=s.ScenarioSerializer)
    def get(self, request, org: str, scenario_id: int):
        return Response(s.ScenarioSerializer(self._scenario(scenario_id)).data)

    @extend_schema(
        request=s.ScenarioWriteSerializer,
        responses=s.ScenarioSerializer,
        description="Send `revision` (the one you edited) to be told with a 409 when someone "
        "saved in between.",
    )
    def patch(self, request, org: str, scenario_id: int):
        data = _payload(s.ScenarioWriteSerializer, request.data, partial=True)
        scenario = services.update_scenario(
            scenario=self._scenario(scenario_id),
            actor=_actor(request),
            name=data.get("name"),
            inputs=data.get("inputs"),
            expected_revision=data.get("revision"),
        )
        return Response(s.ScenarioSerializer(scenario).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, scenario_id: int):
        services.delete_scenario(scenario=self._scenario(scenario_id), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScenarioCloneView(_ScenarioLookup, OrgScopedMixin, APIView):
    required_actions = {"POST": Action.EDIT_PLANS}

    @extend_schema(request=s.CloneSerializer, responses={201: s.ScenarioSerializer})
    def post(self, request, org: str, scenario_id: int):
        data = _payload(s.CloneSerializer, request.data)
        clone = services.clone_scenario(
            scenario=self._scenario(scenario_id), actor=_actor(request), name=data["name"]
        )
        return Response(s.ScenarioSerializer(clone).data, status=status.HTTP_201_CREATED)


# --- Plans ------------------------------------------------------------------------------------


class PlanListView(OrgScopedMixin, generics.ListAPIView):
    """90-day plans. POST generates one from an assessment."""

    serializer_class = s.PlanSerializer
    required_actions = EDIT

    def get_queryset(self):
        return selectors.plans_for_org(org=self.org)

    @extend_schema(
        request=s.PlanCreateSerializer,
        responses={201: s.PlanSerializer},
        examples=[
            OpenApiExample(
                "with targets",
                request_only=True,
                value={"assessment": 1, "scenario": 1, "targets": {"accuracy": 0.93}},
            )
        ],
    )
    def post(self, request, org: str):
        data = _payload(s.PlanCreateSerializer, request.data)
        assessment = _reference(
            selectors.assessment_for_org, self.org, data["assessment"], "assessment"
        )
        scenario = _reference(selectors.scenario_for_org, self.org, data["scenario"], "scenario")
        plan = services.create_plan(
            organization=self.org,
            actor=_actor(request),
            assessment=assessment,
            scenario=scenario,
            name=data["name"],
            targets=data.get("targets"),
        )
        return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


class _PlanLookup:
    def _plan(self, plan_id: int):
        return _found(selectors.plan_for_org(org=self.org, pk=plan_id), "plan")


class PlanDetailView(_PlanLookup, OrgScopedMixin, APIView):
    required_actions = EDIT

    def _detail(self, plan) -> dict[str, Any]:
        context = {"measured": planned_vs_measured(plan)}
        return s.PlanDetailSerializer(plan, context=context).data

    @extend_schema(responses=s.PlanDetailSerializer)
    def get(self, request, org: str, plan_id: int):
        return Response(self._detail(self._plan(plan_id)))

    @extend_schema(request=s.PlanUpdateSerializer, responses=s.PlanDetailSerializer)
    def patch(self, request, org: str, plan_id: int):
        data = _payload(s.PlanUpdateSerializer, request.data, partial=True)
        changes: dict[str, Any] = {}
        if "name" in data:
            changes["name"] = data["name"]
        if "targets" in data:
            changes["targets"] = data["targets"]
        if "scenario" in data:
            changes["scenario"] = _reference(
                selectors.scenario_for_org, self.org, data["scenario"], "scenario"
            )
        plan = services.update_plan(plan=self._plan(plan_id), actor=_actor(request), **changes)
        return Response(self._detail(plan))

    @extend_schema(responses={204: None})
    def delete(self, request, org: str, plan_id: int):
        services.delete_plan(plan=self._plan(plan_id), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlanTaskView(_PlanLookup, OrgScopedMixin, APIView):
    required_actions = {"PATCH": Action.EDIT_PLANS}

    @extend_schema(
        request=s.TaskUpdateSerializer,
        responses=s.PlanSerializer,
        examples=[OpenApiExample("start", request_only=True, value={"status": "doing"})],
    )
    def patch(self, request, org: str, plan_id: int, task_id: str):
        data = _payload(s.TaskUpdateSerializer, request.data, partial=True)
        plan = self._plan(plan_id)
        if not any(task["id"] == task_id for task in plan.tasks):
            raise NotFound("No such task in this plan.")
        if "status" in data:
            plan = services.set_task_status(
                plan=plan, actor=_actor(request), task_id=task_id, status=data["status"]
            )
        if "assignee" in data:
            assignee = None
            if data["assignee"] is not None:
                assignee = selectors.member_of_org(org=self.org, user_id=data["assignee"])
                if assignee is None:
                    raise InvalidInput(
                        "The owner must be a member of the organisation.",
                        fields={"assignee": ["Not a member."]},
                    )
            plan = services.assign_task(
                plan=plan, actor=_actor(request), task_id=task_id, assignee=assignee
            )
        return Response(s.PlanSerializer(plan).data)
