"""Test settings: the real settings with fast hashing and isolated Redis databases.

``DATABASE_URL`` and ``REDIS_URL`` come from the environment exactly as in production
(CI sets both: PostgreSQL and Redis). Without them, SQLite and the filesystem broker.
"""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from opshero.settings import *  # noqa: F403
from opshero.settings import REDIS_URL, STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

_tmp = Path(tempfile.mkdtemp(prefix="opshero-tests-"))
# A worker started by a test in another process must see the same files.
MEDIA_ROOT = Path(os.environ.get("OPSHERO_TEST_MEDIA_ROOT") or _tmp / "media")
VALIDATION_WORKDIR = _tmp / "validation"


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


if REDIS_URL:
    # Tests flush their cache and purge their queues; keep that away from any other user of
    # the server. Two test runs side by side on one Redis pick other databases with
    # OPSHERO_TEST_REDIS_DBS="<cache>,<broker>".
    _cache_db, _broker_db = (
        int(n) for n in os.environ.get("OPSHERO_TEST_REDIS_DBS", "14,15").split(",")
    )
    # Under pytest-xdist each worker takes the next pair of databases down (gw0 the given
    # pair, gw1 the two below it, ...), so workers never flush each other's cache or queues.
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    _offset = 2 * int(_worker) if _worker.isdigit() else 0
    _cache_db, _broker_db = _cache_db - _offset, _broker_db - _offset
    if min(_cache_db, _broker_db) < 1:
        raise RuntimeError(
            f"OPSHERO_TEST_REDIS_DBS leaves no Redis database pair for xdist worker {_worker}; "
            "give a higher pair (e.g. 14,15) or fewer workers."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _redis_db(REDIS_URL, _cache_db),
            "KEY_PREFIX": "opshero-test",
        }
    }
    CELERY_BROKER_URL = _redis_db(REDIS_URL, _broker_db)
    CELERY_RESULT_BACKEND = _redis_db(REDIS_URL, _broker_db)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _broker = _tmp / "broker"
    _broker.mkdir()
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker),
        "data_folder_out": str(_broker),
        "processed_folder": str(_broker),
        "store_processed": False,
        "control_folder": str(_broker / "control"),
    }
    (_tmp / "results").mkdir()
    CELERY_RESULT_BACKEND = f"file://{_tmp / 'results'}"

READINESS_WORKER_TIMEOUT = float(os.environ.get("READINESS_WORKER_TIMEOUT", "5"))
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Pages under test need some telemetry, not a week of it (tests/telemetry/test_demo.py seeds the
# full week once).
DEMO_TELEMETRY_DAYS = 1
