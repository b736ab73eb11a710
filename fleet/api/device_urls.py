from django.urls import path

from . import device_views

# Device API, mounted at /api/v1/device/: signed requests about the calling device only
# (docs/device-api.md). No trailing slashes, as gateways call exact paths.
urlpatterns = [
    path("enroll", device_views.EnrollView.as_view(), name="device-enroll"),
    path("me", device_views.MeView.as_view(), name="device-me"),
    path("status", device_views.StatusView.as_view(), name="device-status"),
    path("rotate-key", device_views.RotateKeyView.as_view(), name="device-rotate-key"),
]
