"""The wire contract between the OpsHero server and edge gateways (no Django).

Signed device requests, the signed model manifest and its envelope, the telemetry batch
schema: defined once here and imported by the server apps and the gateway agent alike.
"""
