"""The ONNX validation of an uploaded model version, with no Django in it.

One module per step of the run (integrity, compatibility, latency, variants, calibration,
gates), the shared :class:`~onnxcheck.results.StepResult`, and :mod:`onnxcheck.pipeline`, which
runs them in order, each heavy step in a child process (:mod:`onnxcheck.runner`,
``python -m onnxcheck.worker``). The registry stores what it returns; nothing here imports Django
or touches a database.
"""
