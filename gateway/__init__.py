"""Reference gateway agent (no Django): enrolls with its own key and signs every request.

Later parts (signed model install, inference, store-and-forward telemetry) build on the
client and state kept here.
"""
