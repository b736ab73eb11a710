"""OpsHero settings, read from the environment.

Embedded defaults (no environment at all) run everything on one machine: SQLite and a
filesystem Celery broker under ``var/``. Setting ``DATABASE_URL`` and ``REDIS_URL`` (or
``CELERY_BROKER_URL``) switches the same code to PostgreSQL and Redis.

``OPSHERO_ENV`` is ``development`` (default) or ``production``. Production requires a real
``SECRET_KEY`` and ``ALLOWED_HOSTS`` and turns on every transport-security setting, so that
``manage.py check --deploy`` reports nothing.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
OPSHERO_ENV = env.str("OPSHERO_ENV", default="development")
if OPSHERO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"OPSHERO_ENV must be development or production, not {OPSHERO_ENV!r}"
    )
PRODUCTION = OPSHERO_ENV == "production"

VAR_DIR = Path(env.str("OPSHERO_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _development_secret_key() -> str:
    """Generate the development key once and keep it under var/ so sessions survive restarts."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to at least 50 random characters when OPSHERO_ENV=production"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()

DEBUG = env.bool("DEBUG", default=False) and not PRODUCTION

if PRODUCTION:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
else:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",  # FilterSets of the lists; its templates serve the browsable API's form
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "opshero",
    "fleet",
    "modelregistry",
    "telemetry",
    "review",
    "rollouts",
    "roi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "opshero.middleware.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "opshero.urls"
WSGI_APPLICATION = "opshero.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "opshero.context_processors.shell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'opshero.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let web, worker and beat share one SQLite file without
    # "database is locked" errors under ordinary load.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Telemetry (events, their ledger and rollups, the landing table) may live in a PostgreSQL of
# its own: telemetry.routers.TelemetryRouter sends the telemetry store there when this is set.
if env.str("TELEMETRY_DATABASE_URL", default=""):
    DATABASES["telemetry"] = env.db("TELEMETRY_DATABASE_URL")
    DATABASES["telemetry"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["telemetry"]["CONN_HEALTH_CHECKS"] = True
DATABASE_ROUTERS = ["telemetry.routers.TelemetryRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (login throttling, replay protection) ---------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "opshero",
            # A Redis that is down or hung must cost a request milliseconds, not seconds:
            # callers (device credentials, throttles) fall back when the cache fails.
            "OPTIONS": {
                "socket_connect_timeout": 0.5,
                "socket_timeout": 0.5,
                "retry": Retry(NoBackoff(), 0),
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Auth -----------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Failed logins per (username, client) before the form refuses further attempts for a while.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# How many reverse proxies in front of the app append to X-Forwarded-For (0: trust none).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Fleet ----------------------------------------------------------------------------------
# An active device that has not been heard from for this long counts as offline.
DEVICE_OFFLINE_AFTER_SECONDS = env.int("DEVICE_OFFLINE_AFTER_SECONDS", default=600)
# Device CSV import limits (bytes, rows).
FLEET_CSV_MAX_BYTES = env.int("FLEET_CSV_MAX_BYTES", default=5 * 1024 * 1024)
FLEET_CSV_MAX_ROWS = env.int("FLEET_CSV_MAX_ROWS", default=20_000)

# --- Model registry and validation --------------------------------------------------------------
# One .onnx file, or a .zip/.tar bundle of a model with its external-data files (the limit
# covers the archive and, separately, everything it unpacks to). Raise it for models over 2 GB:
# those keep their weights in external data and are uploaded as a bundle.
MODEL_UPLOAD_MAX_BYTES = env.int("MODEL_UPLOAD_MAX_BYTES", default=500 * 1024 * 1024)
# Bundle limits: files per archive, and the largest unpacked/compressed ratio (zip bombs).
BUNDLE_MAX_FILES = env.int("BUNDLE_MAX_FILES", default=64)
BUNDLE_MAX_RATIO = env.int("BUNDLE_MAX_RATIO", default=200)
# Scratch space of validation runs (inputs, step logs, variants before they are stored).
VALIDATION_WORKDIR = Path(env.str("VALIDATION_WORKDIR", default=str(VAR_DIR / "validation")))
VALIDATION_MAX_ATTEMPTS = env.int("VALIDATION_MAX_ATTEMPTS", default=2)
# A running validation that has not finished a step for this long lost its worker.
VALIDATION_STALE_SECONDS = env.int("VALIDATION_STALE_SECONDS", default=3 * 3600)
VALIDATION_TASK_TIME_LIMIT = env.int("VALIDATION_TASK_TIME_LIMIT", default=2 * 3600)
# Intra-op threads of every measurement: explicit, so the figure does not depend on what
# onnxruntime guesses (0 = onnxruntime's default). The Procfile's validation worker runs one run
# at a time with this many threads.
VALIDATION_THREADS = env.int("VALIDATION_THREADS", default=2) or None
# Other services (web, ingest, the demo) share the validation worker's host: `make run` does.
# Reports say so; set false on a dedicated validation host.
VALIDATION_HOST_SHARED = env.bool("VALIDATION_HOST_SHARED", default=True)
# Optional address-space cap for each validation step's child process (bytes).
VALIDATION_ADDRESS_SPACE_BYTES = env.int("VALIDATION_ADDRESS_SPACE_BYTES", default=0) or None
# Budgets for shape buckets, checked when a validation is requested (before a worker allocates):
# the largest size of one dynamic axis, and the largest single input tensor (256 MiB).
VALIDATION_MAX_AXIS_SIZE = env.int("VALIDATION_MAX_AXIS_SIZE", default=1 << 20)
VALIDATION_MAX_TENSOR_BYTES = env.int("VALIDATION_MAX_TENSOR_BYTES", default=256 * 1024 * 1024)
MANIFEST_VALIDITY_DAYS = env.int("MANIFEST_VALIDITY_DAYS", default=180)
# A re-issued manifest (rollback) is valid at least this long, even when the signature it
# re-issues expires sooner.
REISSUE_MIN_VALIDITY = timedelta(days=env.int("REISSUE_MIN_VALIDITY_DAYS", default=30))
# Staged rollouts: how often beat evaluates running rollouts, and the defaults a new rollout
# starts from (each editable per rollout and per wave).
ROLLOUT_EVALUATE_SECONDS = env.float("ROLLOUT_EVALUATE_SECONDS", default=5.0)


def _master_key(name: str) -> bytes:
    """A master secret from the environment variable ``name`` (base64 of 32+ random bytes):
    required in production, generated once into var/<name in lower case> in development."""
    value = env.str(name, default="")
    if not value:
        if PRODUCTION:
            raise ImproperlyConfigured(
                f"{name} must be set in production (base64 of 32+ random bytes)."
            )
        key_file = VAR_DIR / name.lower()
        if not key_file.exists():
            key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
            key_file.chmod(0o600)
        value = key_file.read_text().strip()
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64.") from exc
    if len(key) < 32:
        raise ImproperlyConfigured(f"{name} must decode to at least 32 bytes.")
    return key


# Encrypts signing keys at rest.
SIGNING_MASTER_KEY = _master_key("SIGNING_MASTER_KEY")
# Evidence data keys are wrapped under keys derived from it (review.crypto); distinct from the
# signing master key, so a leak of one never opens the other.
EVIDENCE_MASTER_KEY = _master_key("EVIDENCE_MASTER_KEY")
if EVIDENCE_MASTER_KEY == SIGNING_MASTER_KEY:
    raise ImproperlyConfigured("EVIDENCE_MASTER_KEY must differ from SIGNING_MASTER_KEY.")
# Encrypted evidence objects (one file a sample); their data keys live in the database.
EVIDENCE_ROOT = Path(env.str("EVIDENCE_ROOT", default=str(VAR_DIR / "evidence")))
# Default retention of evidence samples (an organisation changes it on the review settings page).
EVIDENCE_RETENTION_DAYS = env.int("EVIDENCE_RETENTION_DAYS", default=30)
EVIDENCE_CLINIC_RETENTION_DAYS = env.int("EVIDENCE_CLINIC_RETENTION_DAYS", default=7)

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Every file the server keeps (artifacts, representative inputs, variants) goes through the
# storage API, so object storage is a setting: e.g. FILE_STORAGE_BACKEND=
# storages.backends.s3.S3Storage with FILE_STORAGE_OPTIONS='{"bucket_name": "opshero"}'
# (django-storages; docs/operations.md).
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json("FILE_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("SECURE_PROXY_SSL", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz and /readyz are probed over plain HTTP by load balancers inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Content security policy: everything the UI loads comes from this origin (no CDN).
# Styles allow inline attributes because Plotly and Tabler set element styles at run time.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Django REST framework and OpenAPI ------------------------------------------------------
REST_FRAMEWORK = {
    # Token first so that an unauthenticated call answers 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "opshero.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Depth, number and NUL/surrogate checks for every JSON body (opshero/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["opshero.api.parsers.ApiJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "opshero.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "opshero.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "opshero.api.schema.OpsHeroAutoSchema",
    # Rates of the scoped throttles; every throttle class derives from
    # opshero.throttling.ClientAddressThrottle (keyed on client_ip). NUM_PROXIES makes DRF's
    # own get_ident agree with TRUSTED_PROXY_COUNT should any other throttle ever be used.
    "DEFAULT_THROTTLE_RATES": {"token": "10/min", "enroll": "20/min"},
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )
SPECTACULAR_SETTINGS = {
    "TITLE": "OpsHero API",
    "DESCRIPTION": (
        "User API (token or session auth, organisation-scoped under /api/v1/orgs/{org}/) and "
        "device API (signed requests). Every error has the shape "
        '{"error": {"code": ..., "message": ..., "fields": {...}}}.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PlacementEnum": "fleet.models.Placement",
        "SiteKindEnum": "fleet.models.Site.Kind",
        "ExecutionProviderEnum": "fleet.models.ExecutionProvider",
        "RoleEnum": "opshero.roles.Role",
        "DeviceStatusEnum": "fleet.models.Device.Status",
        "ModelVersionStatusEnum": "modelregistry.models.ModelVersion.Status",
        "ValidationRunStatusEnum": "modelregistry.models.ValidationRun.Status",
        "SigningKeyStatusEnum": "modelregistry.models.SigningKey.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or (
    REDIS_URL or f"file://{VAR_DIR / 'celery' / 'results'}"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # With late acks a task that runs longer than the visibility timeout would be handed to
    # a second worker; keep it above the hard time limit of the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600}
if CELERY_RESULT_BACKEND.startswith("file://"):
    (VAR_DIR / "celery" / "results").mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name) for name in ("default", "validation", "ingest", "rollouts")]
CELERY_TASK_ROUTES = {
    "modelregistry.validate_*": {"queue": "validation"},
    "fleet.validate_*": {"queue": "validation"},  # the old task name, for one release
    "telemetry.*": {"queue": "ingest"},
    "rollouts.*": {"queue": "rollouts"},
    "review.*": {"queue": "default"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
CELERY_TASK_IGNORE_RESULT = True  # tasks that answer (ping) opt in
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "sweep-landed-telemetry": {
        "task": "telemetry.sweep_landed_batches",
        "schedule": env.float("TELEMETRY_SWEEP_SECONDS", default=30.0),
    },
    "roll-up-telemetry": {
        "task": "telemetry.roll_up",
        "schedule": env.float("TELEMETRY_ROLLUP_SECONDS", default=10.0),
    },
    "evaluate-fleet-signals": {
        "task": "telemetry.evaluate_signals",
        "schedule": env.float("TELEMETRY_SIGNALS_SECONDS", default=30.0),
    },
    "evaluate-rollouts": {
        "task": "rollouts.evaluate_rollouts",
        "schedule": ROLLOUT_EVALUATE_SECONDS,
    },
    "retry-due-alert-notifications": {
        "task": "telemetry.retry_due_notifications",
        "schedule": 60,
    },
    "maintain-telemetry-partitions": {
        "task": "telemetry.maintain_storage",
        "schedule": 3600,
    },
    "clear-expired-sessions": {
        "task": "opshero.clear_expired_sessions",
        "schedule": 6 * 3600,
    },
    "purge-device-nonces": {
        "task": "fleet.purge_device_nonces",
        "schedule": 3600,
    },
    "fail-stale-validation-runs": {
        "task": "modelregistry.fail_stale_validation_runs",
        "schedule": 600,
    },
    "link-pending-evidence": {
        "task": "review.link_pending_evidence",
        "schedule": env.float("EVIDENCE_LINK_SECONDS", default=15.0),
    },
    "apply-evidence-retention": {
        "task": "review.apply_evidence_retention",
        "schedule": env.float("EVIDENCE_RETENTION_SECONDS", default=600.0),
    },
    "delete-expired-labelled-exports": {
        "task": "review.delete_expired_exports",
        "schedule": env.float("EVIDENCE_RETENTION_SECONDS", default=600.0),
    },
    "delete-superseded-variant-files": {
        "task": "modelregistry.delete_superseded_variant_files",
        "schedule": 3600,
    },
}
# --- Telemetry ------------------------------------------------------------------------------
# A batch holds at most this many events (413 over it) and inflates to at most this many bytes.
TELEMETRY_MAX_EVENTS_PER_BATCH = env.int("TELEMETRY_MAX_EVENTS_PER_BATCH", default=5000)
TELEMETRY_MAX_DECOMPRESSED_BYTES = env.int(
    "TELEMETRY_MAX_DECOMPRESSED_BYTES", default=8 * 1024 * 1024
)
# How far ahead of the server's clock an event's timestamp may be.
TELEMETRY_CLOCK_WINDOW_SECONDS = env.int("TELEMETRY_CLOCK_WINDOW_SECONDS", default=300)
# A landed batch whose task has not run within this many seconds is taken by the sweep.
TELEMETRY_SWEEP_AFTER_SECONDS = env.int("TELEMETRY_SWEEP_AFTER_SECONDS", default=60)
# A batch that failed this many times stays landed (shown on the ingest page), untried.
TELEMETRY_MAX_INGEST_ATTEMPTS = env.int("TELEMETRY_MAX_INGEST_ATTEMPTS", default=5)
# The web process publishes ingest tasks from a background thread, so a broker outage never
# delays a gateway's answer (telemetry.dispatch); off, it publishes inline.
TELEMETRY_ENQUEUE_IN_BACKGROUND = env.bool("TELEMETRY_ENQUEUE_IN_BACKGROUND", default=True)
# How many days of telemetry history seed_demo backfills for the demo fleet.
DEMO_TELEMETRY_DAYS = env.int("DEMO_TELEMETRY_DAYS", default=7)
# Daily partitions created this many days ahead; the ingest log is kept this many days.
TELEMETRY_PARTITIONS_AHEAD_DAYS = env.int("TELEMETRY_PARTITIONS_AHEAD_DAYS", default=7)
TELEMETRY_INGEST_LOG_DAYS = env.int("TELEMETRY_INGEST_LOG_DAYS", default=7)
# One health sample speaks for the time to the next one, at most this long (online/offline
# seconds); longer silence is "no data". Gateways sample health every 60 s by default.
TELEMETRY_HEALTH_SAMPLE_GAP_SECONDS = env.int("TELEMETRY_HEALTH_SAMPLE_GAP_SECONDS", default=300)
# The fleet health, site, device and alert pages refresh their panel this often (paused while
# the browser tab is hidden).
TELEMETRY_HEALTH_POLL_SECONDS = env.float("TELEMETRY_HEALTH_POLL_SECONDS", default=15.0)
# Minute rollups are kept this many days (hour rollups as long as the events' retention).
TELEMETRY_MINUTE_ROLLUP_DAYS = env.int("TELEMETRY_MINUTE_ROLLUP_DAYS", default=3)

# --- Alert notifications --------------------------------------------------------------------
# A delivery that failed in a way worth retrying (408, 429, 5xx, no connection) is tried again
# after BACKOFF * 2**(attempts - 1) seconds, at most MAX_ATTEMPTS times in all.
ALERT_NOTIFICATION_MAX_ATTEMPTS = env.int("ALERT_NOTIFICATION_MAX_ATTEMPTS", default=6)
ALERT_NOTIFICATION_BACKOFF_SECONDS = env.float("ALERT_NOTIFICATION_BACKOFF_SECONDS", default=30.0)
# Webhooks to loopback, private, link-local or reserved addresses are refused unless this is on
# (development; the test suite turns it on for its local receiver).
ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
# Where people reach this server (https://ops.example.com): links in notifications are built on
# it; without it they are paths only.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

# How long /readyz waits for a worker to answer the ping task.
READINESS_WORKER_TIMEOUT = env.float("READINESS_WORKER_TIMEOUT", default=3.0)

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
