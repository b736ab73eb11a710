"""Telemetry pages, mounted under /o/<org>/ with the namespace "telemetry"."""

from django.urls import path

from . import views

app_name = "telemetry"

urlpatterns = [
    path("telemetry/ingest/", views.ingest, name="ingest"),
]
