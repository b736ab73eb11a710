"""The plan board's pure parts: the task table's rows, dates from a start date, timing, evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from roi.plan import (
    PHASES,
    TASK_ROWS,
    EvidenceFound,
    PlanTask,
    TaskEvidence,
    TaskStatus,
    Timing,
    day_date,
    generate_plan,
    task_days,
    task_row,
    task_states,
)
from roi.rules import PrivacyRisk, WizardAnswers, Workflow, decide

START = date(2026, 3, 2)


def plan(**changes):
    answers = WizardAnswers(
        workflow=Workflow.CUSTOM,
        latency_tolerance_ms=100,
        offline_share=0.3,
        privacy_risk=PrivacyRisk.LOW,
        model_changes_per_year=4,
        sites=5,
    )
    return generate_plan(result=decide(answers=replace(answers, **changes)))


def states(tasks, *, today: date, evidence=None):
    return {
        s.task.id: s
        for s in task_states(tasks=tasks, evidence=evidence or {}, start=START, today=today)
    }


def test_every_row_has_a_unique_id_and_days_inside_its_phase():
    assert len({row.id for row in TASK_ROWS}) == len(TASK_ROWS)
    phases = {phase.key: phase for phase in PHASES}
    for row in TASK_ROWS:
        first, last = row.days or (phases[row.phase].first_day, phases[row.phase].last_day)
        assert phases[row.phase].first_day <= first <= last <= phases[row.phase].last_day, row.id


def test_every_kind_of_evidence_ticks_some_task():
    assert {row.evidence for row in TASK_ROWS if row.evidence} == set(TaskEvidence)
    assert task_row("score_stacks_before_buying").evidence is TaskEvidence.SCORED_STACKS
    assert task_row("select_runtime").evidence is TaskEvidence.VALIDATED_MODEL
    assert task_row("staged_releases").evidence is TaskEvidence.ROLLOUT
    assert task_row("recompute_roi_with_measurements").evidence is TaskEvidence.ROI_SCENARIO
    assert task_row("no_such_task") is None


def test_day_n_falls_on_start_plus_n_minus_one():
    assert day_date(START, 1) == START
    assert day_date(START, 15) == date(2026, 3, 16)
    assert day_date(START, 90) == date(2026, 5, 30)


def test_task_dates_come_from_its_row_or_else_its_phase():
    tasks = {task.id: task for task in plan().tasks}
    assert task_days(tasks["select_runtime"]) == (16, 30)
    assert task_days(tasks["device_identity"]) == (16, 45)
    board = states(plan().tasks, today=START)
    assert board["select_runtime"].first_date == date(2026, 3, 17)
    assert board["select_runtime"].last_date == date(2026, 3, 31)
    # A task stored by an older plan, no longer in the table, keeps its phase's days.
    gone = PlanTask(
        "retired_task", "days_46_70", "Old", "", tasks["pick_workflow"].owner, TaskStatus.TODO, ""
    )
    assert task_days(gone) == (46, 70)


@pytest.mark.parametrize(
    ("today", "timing"),
    [
        (date(2026, 3, 16), Timing.UPCOMING),  # day 15: the runtime task starts on day 16
        (date(2026, 3, 17), Timing.CURRENT),  # day 16
        (date(2026, 3, 31), Timing.CURRENT),  # day 30, its last
        (date(2026, 4, 1), Timing.OVERDUE),  # day 31
    ],
)
def test_a_task_is_upcoming_current_or_overdue_by_its_dates(today, timing):
    assert states(plan().tasks, today=today)["select_runtime"].timing is timing


def test_a_done_task_is_never_overdue():
    pure = plan().with_status(task_id="select_runtime", status=TaskStatus.DONE)
    assert states(pure.tasks, today=date(2026, 12, 1))["select_runtime"].timing is Timing.DONE


def test_evidence_ticks_its_task_and_leaves_manual_statuses_alone():
    pure = plan().with_status(task_id="device_identity", status=TaskStatus.BLOCKED)
    found = EvidenceFound(TaskEvidence.VALIDATED_MODEL, "Dock detector 1.2 passed", "/v/3/")
    board = states(
        pure.tasks, today=date(2026, 6, 1), evidence={TaskEvidence.VALIDATED_MODEL: found}
    )
    assert board["select_runtime"].status is TaskStatus.DONE
    assert board["select_runtime"].evidence == found
    assert board["select_runtime"].timing is Timing.DONE
    assert board["device_identity"].status is TaskStatus.BLOCKED
    assert board["device_identity"].evidence is None
    assert board["device_identity"].timing is Timing.OVERDUE
    # Evidence of one kind ticks only its own tasks.
    assert board["score_stacks_before_buying"].status is TaskStatus.TODO
    assert board["score_stacks_before_buying"].evidence is None


def test_without_evidence_the_set_status_stands():
    pure = plan().with_status(task_id="select_runtime", status=TaskStatus.DOING)
    board = states(pure.tasks, today=START)
    assert board["select_runtime"].status is TaskStatus.DOING
    assert board["decide_placement"].status is TaskStatus.DONE
