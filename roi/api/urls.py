"""Organisation-scoped planning API, mounted under /api/v1/orgs/<org>/."""

from django.urls import path

from . import views

urlpatterns = [
    path("assessments/", views.AssessmentListView.as_view(), name="api-roi-assessments"),
    path(
        "assessments/decide/",
        views.AssessmentDecideView.as_view(),
        name="api-roi-assessment-decide",
    ),
    path(
        "assessments/<int:assessment_id>/",
        views.AssessmentDetailView.as_view(),
        name="api-roi-assessment",
    ),
    path("scorecards/", views.ScorecardListView.as_view(), name="api-roi-scorecards"),
    path(
        "scorecards/<int:scorecard_id>/",
        views.ScorecardDetailView.as_view(),
        name="api-roi-scorecard",
    ),
    path("scenarios/", views.ScenarioListView.as_view(), name="api-roi-scenarios"),
    path(
        "scenarios/compute/", views.ScenarioComputeView.as_view(), name="api-roi-scenario-compute"
    ),
    path(
        "scenarios/presets/<slug:workflow>/",
        views.ScenarioPresetView.as_view(),
        name="api-roi-scenario-preset",
    ),
    path(
        "scenarios/<int:scenario_id>/",
        views.ScenarioDetailView.as_view(),
        name="api-roi-scenario",
    ),
    path(
        "scenarios/<int:scenario_id>/clone/",
        views.ScenarioCloneView.as_view(),
        name="api-roi-scenario-clone",
    ),
    path("plans/", views.PlanListView.as_view(), name="api-roi-plans"),
    path("plans/<int:plan_id>/", views.PlanDetailView.as_view(), name="api-roi-plan"),
    path(
        "plans/<int:plan_id>/tasks/<slug:task_id>/",
        views.PlanTaskView.as_view(),
        name="api-roi-plan-task",
    ),
]
