"""Field sources: the fleet's own figures, read through ``telemetry.selectors``.

Every figure here is a *field* measurement: it comes from the hour rollups built from the
gateways' telemetry (and, for time-to-diagnose, from the alerts people acknowledged), covers the
time since the plan started, and names the sites, the number of devices that reported and the
window. A plan tied to a model is measured on that model's versions only (telemetry names a
version by its artifact's SHA-256); a plan without a model is measured on everything the
organisation's gateways ran.

Telemetry figures are read from hour rollups, so they start at the first whole hour after the
plan started (:func:`rollup_since`): the hour the plan was created in also holds events from
before it, and a plan created a minute ago must not be on track on the fleet's past.
Time-to-diagnose reads alerts one by one and starts at the plan's exact start.

Offline coverage and throttling are properties of the sites and their devices rather than of a
model, so they cover all of the organisation's sites whatever the plan's model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelregistry import selectors as model_selectors
from roi.plan import MeasureContext, MeasureKey, Measurement, Provenance, register_source
from telemetry import selectors as telemetry_selectors
from telemetry.selectors import FieldFigure


def plan_shas(context: MeasureContext) -> tuple[str, ...] | None:
    """The plan model's artifact digests, or None (all models) when the plan names no model.

    A model with no versions yet gives an empty tuple: nothing of it can have run in the field.
    """
    model = context.get("model")
    if model is None:
        return None
    return model_selectors.artifact_sha256s_for_model(org=context["organisation"], model=model)


def rollup_since(context: MeasureContext) -> datetime:
    """The first whole hour at or after the plan's start: hour rollups from there on hold only
    events from after it."""
    since: datetime = context["since"]
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour if hour == since else hour + timedelta(hours=1)


def _scope(context: MeasureContext) -> str:
    model = context.get("model")
    return f"model {model.name}" if model is not None else "all models"


def field_measurement(*, key: str, figure: FieldFigure, source: str) -> Measurement:
    """A field measurement of ``key`` from a telemetry figure, with its sites, devices, window."""
    return Measurement(
        key=key,
        value=float(figure.value),
        unit=figure.unit,
        source=source,
        measured_at=figure.window_end,
        provenance=Provenance.FIELD,
        detail=figure.detail,
        sites=figure.site_names,
        device_count=figure.device_count,
        window_start=figure.window_start,
        window_end=figure.window_end,
    )


def _latency(context: MeasureContext, *, key: str, measure: str, what: str) -> Measurement | None:
    figure = telemetry_selectors.field_latency(
        org=context["organisation"],
        since=rollup_since(context),
        shas=plan_shas(context),
        measure=measure,
        quantile=0.95,
    )
    if figure is None:
        return None
    return field_measurement(
        key=key, figure=figure, source=f"fleet telemetry: {what}, {_scope(context)}"
    )


@register_source(MeasureKey.LATENCY_P95_MS, provenance=Provenance.FIELD)
def field_time_to_action_p95(context: MeasureContext) -> Measurement | None:
    # The metric is time-to-action: capture to UI update, as the gateway reports it. Inference
    # latency is only a part of it, so when no gateway reported time_to_action the metric stays
    # "not measured yet" rather than being judged on inference time (which has its own key,
    # field.inference_p95_ms, shown beside the metrics).
    return _latency(
        context, key=MeasureKey.LATENCY_P95_MS, measure="time_to_action", what="time-to-action"
    )


@register_source(MeasureKey.FIELD_INFERENCE_P95_MS, provenance=Provenance.FIELD)
def field_inference_p95(context: MeasureContext) -> Measurement | None:
    return _latency(
        context,
        key=MeasureKey.FIELD_INFERENCE_P95_MS,
        measure="latency",
        what="on-device inference latency",
    )


@register_source(MeasureKey.ACCURACY, provenance=Provenance.FIELD)
def field_accuracy(context: MeasureContext) -> Measurement | None:
    # Only inferences that came back with a label count (operator feedback); below the
    # selector's minimum number of labels there is no figure at all.
    figure = telemetry_selectors.field_accuracy(
        org=context["organisation"], since=rollup_since(context), shas=plan_shas(context)
    )
    if figure is None:
        return None
    return field_measurement(
        key=MeasureKey.ACCURACY,
        figure=figure,
        source=f"fleet telemetry: labelled inferences, {_scope(context)}",
    )


@register_source(MeasureKey.OFFLINE_COVERAGE, provenance=Provenance.FIELD)
def field_offline_coverage(context: MeasureContext) -> Measurement | None:
    figure = telemetry_selectors.field_offline_coverage(
        org=context["organisation"], since=rollup_since(context)
    )
    if figure is None:
        return None
    return field_measurement(
        key=MeasureKey.OFFLINE_COVERAGE,
        figure=figure,
        source="fleet telemetry: work done offline and delivered, all sites",
    )


@register_source(MeasureKey.FIELD_THROTTLED_SHARE, provenance=Provenance.FIELD)
def field_throttled_share(context: MeasureContext) -> Measurement | None:
    figure = telemetry_selectors.field_throttling(
        org=context["organisation"], since=rollup_since(context)
    )
    if figure is None:
        return None
    return field_measurement(
        key=MeasureKey.FIELD_THROTTLED_SHARE,
        figure=figure,
        source="fleet telemetry: health samples, all sites",
    )


@register_source(MeasureKey.TIME_TO_DIAGNOSE_HOURS, provenance=Provenance.FIELD)
def field_time_to_diagnose(context: MeasureContext) -> Measurement | None:
    model: Any = context.get("model")
    figure = telemetry_selectors.field_time_to_diagnose(
        org=context["organisation"],
        since=context["since"],
        model_ids=[model.pk] if model is not None else None,
    )
    if figure is None:
        return None
    return field_measurement(
        key=MeasureKey.TIME_TO_DIAGNOSE_HOURS,
        figure=figure,
        source=f"fleet alerts acknowledged, {_scope(context)}",
    )
