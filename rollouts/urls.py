"""Rollout pages, mounted at /o/<org>/."""

from django.urls import path

from . import views

app_name = "rollouts"

urlpatterns = [
    path("rollouts/", views.rollout_list, name="list"),
    path("rollouts/new/", views.rollout_new, name="new"),
    path("rollouts/new/preview/", views.rollout_preview, name="preview"),
    path("rollouts/approvals/", views.approvals, name="approvals"),
    path("rollouts/<int:rollout_id>/", views.rollout_detail, name="detail"),
    path("rollouts/<int:rollout_id>/<slug:verb>/", views.rollout_control, name="control"),
]
