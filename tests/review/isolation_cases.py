"""Isolation probes for the review pages (merged into tests/isolation.py CASES); each area of
the app keeps its own in tests/review/isolation_<area>.py."""

from __future__ import annotations

from .isolation_accuracy import CASES as ACCURACY
from .isolation_data import CASES as DATA
from .isolation_queue import CASES as QUEUE

CASES = {**QUEUE, **ACCURACY, **DATA}
