"""Field sources from staged rollouts: how long rollouts and rollbacks really took.

Rollout time runs from the approval to the last device confirmed healthy; rollback time from
the decision to the last device back on its previous version. These are *durations*, not the
staff hours a rollout costs (the ROI's staff-hour inputs stay the planner's figures). A plan
tied to a model counts that model's rollouts only; the figure is the median of those that
finished since the plan started.
"""

from __future__ import annotations

from roi.plan import MeasureContext, MeasureKey, Measurement, Provenance, register_source
from rollouts import selectors as rollout_selectors


def _figure(context: MeasureContext, kind: str):
    return rollout_selectors.completed_durations(
        org=context["organisation"], since=context["since"], model=context.get("model")
    )[kind]


@register_source(MeasureKey.ROLLOUT_HOURS, provenance=Provenance.FIELD)
def field_rollout_hours(context: MeasureContext) -> Measurement | None:
    """Median rollout time in hours, approval → every device healthy."""
    figure = _figure(context, "rollout")
    if figure.median is None:
        return None
    count = len(figure.minutes)
    return Measurement(
        key=MeasureKey.ROLLOUT_HOURS,
        value=figure.median / 60,
        unit="h",
        source="staged rollouts: approval to the last device healthy",
        measured_at=figure.last,
        provenance=Provenance.FIELD,
        detail=f"median of {count} completed rollout{'s' if count != 1 else ''}",
        device_count=figure.devices,
        window_start=figure.first,
        window_end=figure.last,
    )


@register_source(MeasureKey.ROLLBACK_MINUTES, provenance=Provenance.FIELD)
def field_rollback_minutes(context: MeasureContext) -> Measurement | None:
    """Median rollback time in minutes, decision → every device back."""
    figure = _figure(context, "rollback")
    if figure.median is None:
        return None
    count = len(figure.minutes)
    return Measurement(
        key=MeasureKey.ROLLBACK_MINUTES,
        value=figure.median,
        unit="min",
        source="staged rollouts: rollback decision to the last device back",
        measured_at=figure.last,
        provenance=Provenance.FIELD,
        detail=f"median of {count} finished rollback{'s' if count != 1 else ''}",
        device_count=figure.devices,
        window_start=figure.first,
        window_end=figure.last,
    )
