"""Measurement sources: where the plan board's live figures come from.

One module per kind of evidence, each registering functions with
``roi.plan.register_source(key, provenance=...)`` (plan metrics) or
``roi.measurements.register_evidence_source`` (stack scorecard), and reading lower apps only
through their selectors, so those apps never import ``roi``:

- :mod:`roi.sources.validation`: the model registry's validation runs (*lab*).
- ``roi/sources/telemetry.py`` (to come): fleet telemetry, P95 time-to-action at the edge,
  offline coverage, reviewed cases for real-world accuracy and calibration (*field*).
- ``roi/sources/rollouts.py`` (to come): rollout and rollback durations from finished
  rollouts (*field*).

A module is loaded when it is listed in ``roi.measurements.SOURCE_MODULES``.
"""
