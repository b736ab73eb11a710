"""Puts the telemetry store in its own database when ``TELEMETRY_DATABASE_URL`` is set.

Models that declare ``telemetry_store = True`` (events, their ledger, the landing table, the
ingest log; later their rollups) are read, written and migrated on the ``telemetry`` alias;
everything else stays on ``default``. Without a ``telemetry`` database both are ``default``,
and nothing changes. No relation may cross the two (the models hold plain ids).
"""

from __future__ import annotations

from django.conf import settings

TELEMETRY_ALIAS = "telemetry"


def telemetry_db() -> str:
    """The alias the telemetry store lives on."""
    return TELEMETRY_ALIAS if TELEMETRY_ALIAS in settings.DATABASES else "default"


def _is_store(model) -> bool:
    return bool(getattr(model, "telemetry_store", False))


class TelemetryRouter:
    def db_for_read(self, model, **hints):
        return telemetry_db() if _is_store(model) else None

    def db_for_write(self, model, **hints):
        return telemetry_db() if _is_store(model) else None

    def allow_relation(self, obj1, obj2, **hints):
        if _is_store(type(obj1)) != _is_store(type(obj2)) and telemetry_db() != "default":
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if TELEMETRY_ALIAS not in settings.DATABASES:
            return None
        # Migrations pass historical models, which do not keep class attributes such as
        # telemetry_store: ask the real model of that name.
        if app_label == "telemetry" and model_name is not None and _is_store_name(model_name):
            return db == TELEMETRY_ALIAS
        if db == TELEMETRY_ALIAS:
            return False
        return None


def _is_store_name(model_name: str) -> bool:
    from django.apps import apps

    try:
        return _is_store(apps.get_model("telemetry", model_name))
    except LookupError:
        return False
