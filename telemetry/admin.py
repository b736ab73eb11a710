from django.contrib import admin

from .models import SignalPolicy


@admin.register(SignalPolicy)
class SignalPolicyAdmin(admin.ModelAdmin):
    """A model's signal thresholds (models without one use telemetry.drift.DEFAULT_POLICY)."""

    list_display = [
        "model",
        "window_minutes",
        "min_events",
        "js_threshold",
        "psi_alert",
        "wasserstein_threshold",
        "chi2_p_value",
        "consecutive_breaches",
    ]
    list_select_related = ["model", "model__organization"]
    raw_id_fields = ["model"]
    search_fields = ["model__name", "model__organization__name"]
