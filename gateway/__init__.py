"""Reference gateway agent (no Django): enrolls with its own key, verifies and installs signed
models, serves inference locally and forwards telemetry from a durable queue.

Installable on its own as the ``opshero-gateway`` distribution (packaging/gateway), which
holds this package and ``protocol`` only; docs/gateway.md is the operator's guide.
"""

__version__ = "0.2.0"
