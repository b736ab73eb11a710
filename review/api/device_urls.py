from django.urls import path

from . import device_views

# Mounted at /api/v1/device/ beside fleet's and telemetry's device API (same signing).
urlpatterns = [
    path("evidence", device_views.EvidenceUploadView.as_view(), name="device-evidence"),
]
