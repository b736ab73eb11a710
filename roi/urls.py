"""Planning pages, mounted under /o/<org>/ with the namespace "roi" (paths start with plan/)."""

from django.urls import path

from .views import assessments, plans, scenarios, scorecards, wizard

app_name = "roi"

urlpatterns = [
    path("plan/", assessments.home, name="home"),
    # Decision wizard -> assessments
    path("plan/wizard/", wizard.wizard, name="wizard"),
    path("plan/wizard/reset/", wizard.wizard_reset, name="wizard-reset"),
    path("plan/wizard/<slug:step>/", wizard.wizard_step, name="wizard-step"),
    path("plan/assessments/", assessments.assessment_list, name="assessments"),
    path(
        "plan/assessments/<int:assessment_id>/",
        assessments.assessment_detail,
        name="assessment",
    ),
    path(
        "plan/assessments/<int:assessment_id>/delete/",
        assessments.assessment_delete,
        name="assessment-delete",
    ),
    path(
        "plan/assessments/<int:assessment_id>/plan/",
        assessments.assessment_plan,
        name="assessment-plan",
    ),
    # Stack scorecards
    path("plan/scorecards/", scorecards.scorecard_list, name="scorecards"),
    path("plan/scorecards/new/", scorecards.scorecard_new, name="scorecard-new"),
    path("plan/scorecards/preview/", scorecards.scorecard_preview, name="scorecard-preview"),
    path("plan/scorecards/<int:scorecard_id>/", scorecards.scorecard_detail, name="scorecard"),
    path(
        "plan/scorecards/<int:scorecard_id>/delete/",
        scorecards.scorecard_delete,
        name="scorecard-delete",
    ),
    # ROI/TCO scenarios
    path("plan/scenarios/", scenarios.scenario_list, name="scenarios"),
    path("plan/scenarios/new/", scenarios.scenario_new, name="scenario-new"),
    path("plan/scenarios/compute/", scenarios.scenario_compute, name="scenario-compute"),
    path("plan/scenarios/compare/", scenarios.scenario_compare, name="scenario-compare"),
    path("plan/scenarios/<int:scenario_id>/", scenarios.scenario_detail, name="scenario"),
    path(
        "plan/scenarios/<int:scenario_id>/clone/",
        scenarios.scenario_clone,
        name="scenario-clone",
    ),
    path(
        "plan/scenarios/<int:scenario_id>/delete/",
        scenarios.scenario_delete,
        name="scenario-delete",
    ),
    path(
        "plan/scenarios/<int:scenario_id>/export.csv",
        scenarios.scenario_export,
        name="scenario-export",
    ),
    path(
        "plan/scenarios/<int:scenario_id>/report/",
        scenarios.scenario_report,
        name="scenario-report",
    ),
    # 90-day plans
    path("plan/plans/", plans.plan_list, name="plans"),
    path("plan/plans/<int:plan_id>/", plans.plan_detail, name="plan"),
    path("plan/plans/<int:plan_id>/tasks/<slug:task_id>/", plans.plan_task, name="plan-task"),
    path("plan/plans/<int:plan_id>/targets/", plans.plan_targets, name="plan-targets"),
    path("plan/plans/<int:plan_id>/start/", plans.plan_start, name="plan-start"),
    path("plan/plans/<int:plan_id>/scenario/", plans.plan_scenario, name="plan-scenario"),
    path("plan/plans/<int:plan_id>/model/", plans.plan_model, name="plan-model"),
    path("plan/plans/<int:plan_id>/delete/", plans.plan_delete, name="plan-delete"),
]
