"""Telemetry pages, mounted under /o/<org>/ with the namespace "telemetry"."""

from django.urls import path

from . import views

app_name = "telemetry"

urlpatterns = [
    path("telemetry/ingest/", views.ingest, name="ingest"),
    path("telemetry/notifications/", views.notification_channels, name="notifications"),
    path(
        "telemetry/notifications/<int:channel_id>/toggle/",
        views.notification_channel_toggle,
        name="notification-channel-toggle",
    ),
    path(
        "telemetry/notifications/<int:channel_id>/delete/",
        views.notification_channel_delete,
        name="notification-channel-delete",
    ),
    path(
        "telemetry/notifications/<int:channel_id>/test/",
        views.notification_channel_test,
        name="notification-channel-test",
    ),
    path("health/", views.fleet_health, name="health"),
    path("health/sites/<int:site_id>/", views.site_health, name="site-health"),
    path("health/devices/<int:device_id>/", views.device_health, name="device-health"),
    path("health/compare/", views.compare, name="compare"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert-detail"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert-resolve"),
]
