"""Field sources: reviewed cases, read through ``review.field_accuracy``.

People's verdicts on the cases gateways sampled (low-confidence and audit samples) since the
plan started give the *field* accuracy and calibration (ECE, 15 bins) of the plan's model. Only
from :data:`review.accuracy.MIN_REVIEWS` reviews on; below that the plan stays "not measured
yet". The accuracy is the stratified estimate on all cases when it exists, else the audit cases'
accuracy (a random share of all cases); low-confidence cases alone are only the hard cases, so
they never stand for the model's accuracy. ECE is computed on every reviewed case.

Two field sources for accuracy. Telemetry already measures it on labelled inferences
(``roi.sources.telemetry.field_accuracy``), and the registry keeps one source per key and
provenance (a second registration is refused). So this module registers, in its place, one
field source that asks both and keeps the figure resting on more cases (labelled inferences
or reviewed cases; on a tie, the reviews: a person looked at each case).
"""

from __future__ import annotations

from review.accuracy import MIN_REVIEWS, Proportion, StratifiedEstimate
from review.field_accuracy import ReviewTally, review_tally
from roi.plan import (
    MeasureContext,
    MeasureKey,
    Measurement,
    Provenance,
    register_source,
    registry,
)
from roi.sources import telemetry as telemetry_sources
from roi.sources.telemetry import plan_shas
from telemetry import selectors as telemetry_selectors


def reviewed(context: MeasureContext) -> ReviewTally | None:
    """The plan model's reviews since the plan started, or None below the minimum."""
    tally = review_tally(
        org=context["organisation"], since=context["since"], shas=plan_shas(context)
    )
    return tally if tally.reviews >= MIN_REVIEWS else None


def _scope(context: MeasureContext) -> str:
    model = context.get("model")
    return f"model {model.name}" if model is not None else "all models"


def _measurement(
    *, key: str, value: float, unit: str, tally: ReviewTally, context: MeasureContext, detail: str
) -> Measurement:
    assert tally.window_start is not None and tally.window_end is not None
    return Measurement(
        key=key,
        value=float(value),
        unit=unit,
        source=f"reviewed cases: {tally.reviews} reviews, {_scope(context)}",
        measured_at=tally.window_end,
        provenance=Provenance.FIELD,
        detail=detail,
        sites=tally.site_names,
        device_count=tally.device_count,
        window_start=tally.window_start,
        window_end=tally.window_end,
    )


def review_accuracy(context: MeasureContext) -> tuple[Measurement, int] | None:
    """The reviewed accuracy of the plan's model and the number of reviews behind it."""
    tally = reviewed(context)
    if tally is None:
        return None
    best = tally.summary.best
    if best is None or best.value is None:
        return None  # only low-confidence cases: a biased sample, no accuracy figure
    if isinstance(best, StratifiedEstimate):
        n = best.total
        detail = (
            f"stratified over {n} reviewed cases: P(low) {best.low_share:.1%} x "
            f"{best.low.shown} under the threshold + {best.high.shown} of audit cases above"
        )
    else:
        assert isinstance(best, Proportion)
        n = best.total
        detail = f"{best.successes} of {n} audit cases right ({best.interval_shown}, 95 %)"
    if n < MIN_REVIEWS:
        return None
    measurement = _measurement(
        key=MeasureKey.ACCURACY,
        value=best.value,
        unit="share",
        tally=tally,
        context=context,
        detail=detail,
    )
    return measurement, n


# The telemetry source (labelled inferences), registered before this module is imported (the
# import above guarantees it); this module's combined source takes its slot.
labelled_accuracy = telemetry_sources.field_accuracy


@register_source(MeasureKey.ACCURACY, provenance=Provenance.FIELD, overwrite=True)
def field_accuracy(context: MeasureContext) -> Measurement | None:
    """Field accuracy from labelled inferences or reviewed cases, whichever has more cases."""
    from_reviews = review_accuracy(context)
    figure = telemetry_selectors.field_accuracy(
        org=context["organisation"],
        since=telemetry_sources.rollup_since(context),
        shas=plan_shas(context),
    )
    if figure is not None and (from_reviews is None or figure.count > from_reviews[1]):
        return labelled_accuracy(context)
    return from_reviews[0] if from_reviews is not None else None


@register_source(MeasureKey.ECE, provenance=Provenance.FIELD)
def field_ece(context: MeasureContext) -> Measurement | None:
    tally = reviewed(context)
    if tally is None or tally.summary.calibration.ece is None:
        return None
    calibration = tally.summary.calibration
    return _measurement(
        key=MeasureKey.ECE,
        value=calibration.ece,
        unit="ratio",
        tally=tally,
        context=context,
        detail=f"ECE over {calibration.count} reviewed cases, 15 equal-width bins",
    )


assert registry.source(MeasureKey.ACCURACY, provenance=Provenance.FIELD) is field_accuracy
