"""Planning: where inference should run, which stack, what it costs and saves, the 90-day plan.

The modules here are plain Python with no Django import, so the web views, the API, Celery
tasks and the tests all call the same computation:

- ``roi.rules``: the architecture decision wizard (versioned rules -> placement + rationale).
- ``roi.scorecard``: the NPU/edge stack scorecard (eight categories, weights, red flags).
- ``roi.engine``: the ROI/TCO calculator (ranges, Monte Carlo, tornado, planned vs measured).
- ``roi.plan``: the 90-day plan, its success metrics and the live-measurement registry.
"""
