"""Latency rules for the ONNX tests.

Small budgets keep the tests fast on 2 cores; the rule is the same code as production.
"""

from __future__ import annotations

from onnxcheck.latency import LatencyRule

QUICK = LatencyRule(
    warmup_runs=3, warmup_max_seconds=0.3, min_runs=20, min_seconds=0.2, max_seconds=0.8
)
VARIANT_QUICK = LatencyRule(
    warmup_runs=2, warmup_max_seconds=0.2, min_runs=10, min_seconds=0.1, max_seconds=0.3
)
