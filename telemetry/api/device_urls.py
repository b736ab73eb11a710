from django.urls import path

from . import device_views

# Mounted at /api/v1/device/ beside fleet's device API (same signing, no trailing slash).
urlpatterns = [
    path("telemetry", device_views.TelemetryIngestView.as_view(), name="device-telemetry"),
]
