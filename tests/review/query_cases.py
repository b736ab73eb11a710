"""Query-count probes for the review list pages (merged into tests/query_counts.py PROBES); each
area keeps its own in tests/review/query_<area>.py. Names a list URL that is not a list goes
in ``NOT_LISTS`` (merged too), a list the rules miss in ``OTHER_LISTS``."""

from __future__ import annotations

from . import query_accuracy, query_data, query_queue

_AREAS = (query_queue, query_accuracy, query_data)
PROBES = {name: probe for area in _AREAS for name, probe in area.PROBES.items()}
NOT_LISTS = {name: why for area in _AREAS for name, why in area.NOT_LISTS.items()}
# Lists neither rule of tests/query_counts.py finds (a list under an object id, ...).
OTHER_LISTS = {name for area in _AREAS for name in area.OTHER_LISTS}
