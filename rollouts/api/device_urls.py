from django.urls import path

from . import device_views

# Mounted at /api/v1/device/ beside fleet's and telemetry's device API (same signing, no
# trailing slash): docs/device-api.md, "Desired state, artifacts and deployment status".
urlpatterns = [
    path("desired", device_views.DesiredStateView.as_view(), name="device-desired"),
    path(
        "artifacts/<int:version_id>",
        device_views.ArtifactView.as_view(),
        name="device-artifact",
    ),
    path(
        "deployments/<int:action_id>/status",
        device_views.ActionStatusView.as_view(),
        name="device-deployment-status",
    ),
]
