"""Isolation probes for every planning URL (collected by tests/isolation.py).

Each builder creates the planning objects in tenant a and returns the probes that touch them;
the shared test checks an outsider gets 404 and changes nothing, and the insider role gets the
status written here.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse

from opshero.roles import Role
from roi.models import Assessment, Plan, RoiScenario, Scorecard
from tests.factories import World
from tests.isolation import Probe
from tests.roi.builders import calculator_data, dock_answers, make_planning, scorecard_data

VIEWER, PLANNER = Role.VIEWER, Role.PLANNER


def _state(world: World) -> Callable[[], tuple]:
    org = world.a.org

    def state() -> tuple:
        return (
            list(Assessment.objects.filter(organization=org).values_list("pk", "name")),
            list(Scorecard.objects.filter(organization=org).values_list("pk", "revision")),
            list(RoiScenario.objects.filter(organization=org).values_list("pk", "revision")),
            list(
                Plan.objects.filter(organization=org).values_list(
                    "pk", "name", "data", "targets", "scenario_id", "assignees", "start_date"
                )
            ),
        )

    return state


def _url(name: str, world: World, **ids) -> str:
    return reverse(name, kwargs={"org": world.a.org.slug, **ids})


def _ids(objs: dict, **wanted: str) -> dict[str, int]:
    return {kwarg: objs[key].pk for kwarg, key in wanted.items()}


def read(name: str, role: str = VIEWER, query: str = "", **wanted: str):
    """A GET every member may make."""

    def build(world: World) -> list[Probe]:
        objs = make_planning(world.a.org)
        url = _url(name, world, **_ids(objs, **wanted))
        if query:
            url += "?" + query.format(**{key: obj.pk for key, obj in objs.items()})
        status = 302 if name == "roi:wizard" else 200
        return [Probe("GET", url, insider_role=role, insider_status=status)]

    return build


def write(
    name: str,
    data=None,
    *,
    status: int = 302,
    role: str = PLANNER,
    method: str = "POST",
    json_body: bool = False,
    extra_kwargs: dict | None = None,
    **wanted: str,
):
    """A write (or a stateless POST): the outsider must change nothing."""

    def build(world: World) -> list[Probe]:
        objs = make_planning(world.a.org)
        url = _url(name, world, **_ids(objs, **wanted), **(extra_kwargs or {}))
        payload = data(objs) if callable(data) else (data if data is not None else {})
        return [
            Probe(
                method,
                url,
                data=payload,
                insider_role=role,
                insider_status=status,
                state=_state(world),
                json_body=json_body,
            )
        ]

    return build


def _wizard_step(world: World) -> list[Probe]:
    make_planning(world.a.org)
    return [
        Probe("GET", _url("roi:wizard-step", world, step="workflow"), insider_role=VIEWER),
        Probe(
            "POST",
            _url("roi:wizard-step", world, step="latency"),
            data={"latency_tolerance_ms": "150", "go": "next"},
            insider_role=VIEWER,
            insider_status=302,
            state=_state(world),
        ),
    ]


CASES: dict[str, Callable[[World], list[Probe]]] = {
    # pages
    "roi:home": read("roi:home"),
    "roi:wizard": read("roi:wizard", query="from={assessment}"),
    "roi:wizard-reset": write("roi:wizard-reset", role=VIEWER),
    "roi:wizard-step": _wizard_step,
    "roi:assessments": read("roi:assessments"),
    "roi:assessment": read("roi:assessment", assessment_id="assessment"),
    "roi:assessment-delete": write(
        # has a plan, so a planner is told (message + redirect) and nothing is deleted
        "roi:assessment-delete",
        assessment_id="assessment",
    ),
    "roi:assessment-plan": write("roi:assessment-plan", assessment_id="assessment"),
    "roi:scorecards": read("roi:scorecards"),
    "roi:scorecard-new": read("roi:scorecard-new"),
    "roi:scorecard-preview": write(
        "roi:scorecard-preview", lambda o: scorecard_data(), status=200, role=VIEWER
    ),
    "roi:scorecard": read("roi:scorecard", scorecard_id="scorecard"),
    "roi:scorecard-delete": write("roi:scorecard-delete", scorecard_id="scorecard"),
    "roi:scenarios": read("roi:scenarios"),
    "roi:scenario-new": read("roi:scenario-new", query="assessment={assessment}"),
    "roi:scenario-compute": write(
        "roi:scenario-compute", lambda o: calculator_data(), status=200, role=VIEWER
    ),
    "roi:scenario-compare": read("roi:scenario-compare", query="ids={scenario}"),
    "roi:scenario": read("roi:scenario", scenario_id="scenario"),
    "roi:scenario-clone": write("roi:scenario-clone", scenario_id="scenario"),
    "roi:scenario-delete": write("roi:scenario-delete", scenario_id="scenario"),
    "roi:scenario-export": read("roi:scenario-export", scenario_id="scenario"),
    "roi:scenario-report": read("roi:scenario-report", scenario_id="scenario"),
    "roi:plans": read("roi:plans"),
    "roi:plan": read("roi:plan", plan_id="plan"),
    "roi:plan-task": write(
        "roi:plan-task",
        {"status": "doing"},
        plan_id="plan",
        extra_kwargs={"task_id": "select_runtime"},
    ),
    "roi:plan-start": write("roi:plan-start", {"start_date": "2026-03-02"}, plan_id="plan"),
    "roi:plan-targets": write(
        "roi:plan-targets",
        {
            "accuracy_pct": "93",
            "int8_accuracy_drop_points": "1",
            "operator_coverage_pct": "98",
            "ece": "0.05",
            "time_to_diagnose_hours": "4",
        },
        plan_id="plan",
    ),
    "roi:plan-scenario": write("roi:plan-scenario", {"scenario": ""}, plan_id="plan"),
    "roi:plan-model": write("roi:plan-model", {"model": ""}, plan_id="plan"),
    "roi:plan-delete": write("roi:plan-delete", plan_id="plan"),
    # API
    "api-roi-assessments": write(
        "api-roi-assessments",
        {"name": "API", "answers": dock_answers()},
        status=201,
        json_body=True,
    ),
    "api-roi-assessment-decide": write(
        "api-roi-assessment-decide",
        {"answers": dock_answers()},
        status=200,
        role=VIEWER,
        json_body=True,
    ),
    "api-roi-assessment": write(
        "api-roi-assessment",
        {"name": "Renamed"},
        status=200,
        method="PATCH",
        json_body=True,
        assessment_id="assessment",
    ),
    "api-roi-scorecards": read("api-roi-scorecards"),
    "api-roi-scorecard": write(
        "api-roi-scorecard",
        {"weights": {"security": 2}},
        status=200,
        method="PATCH",
        json_body=True,
        scorecard_id="scorecard",
    ),
    "api-roi-scenarios": read("api-roi-scenarios"),
    "api-roi-scenario-compute": write(
        "api-roi-scenario-compute",
        {"workflow": "logistics_dock_vision", "draws": 200},
        status=200,
        role=VIEWER,
        json_body=True,
    ),
    "api-roi-scenario-preset": write(
        "api-roi-scenario-preset",
        None,
        status=200,
        role=VIEWER,
        method="GET",
        extra_kwargs={"workflow": "field_service_triage"},
    ),
    "api-roi-scenario": write(
        "api-roi-scenario",
        {"name": "Renamed"},
        status=200,
        method="PATCH",
        json_body=True,
        scenario_id="scenario",
    ),
    "api-roi-scenario-clone": write(
        "api-roi-scenario-clone", {}, status=201, json_body=True, scenario_id="scenario"
    ),
    "api-roi-plans": read("api-roi-plans"),
    "api-roi-plan": write(
        "api-roi-plan",
        {"targets": {"accuracy": 0.95}},
        status=200,
        method="PATCH",
        json_body=True,
        plan_id="plan",
    ),
    "api-roi-plan-task": write(
        "api-roi-plan-task",
        {"status": "done"},
        status=200,
        method="PATCH",
        json_body=True,
        plan_id="plan",
        extra_kwargs={"task_id": "select_runtime"},
    ),
}
