"""Settings come from the environment: embedded defaults, service URLs, production checks.

Each case runs in a fresh interpreter so the environment is read exactly as at start-up.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "db": db["ENGINE"], "db_name": str(db["NAME"]),
    "broker": s.CELERY_BROKER_URL, "results": s.CELERY_RESULT_BACKEND,
    "cache": s.CACHES["default"]["BACKEND"], "debug": s.DEBUG, "media": str(s.MEDIA_ROOT),
    "hasher": s.PASSWORD_HASHERS[0], "ssl_redirect": getattr(s, "SECURE_SSL_REDIRECT", False),
}))
"""
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SECRET_KEY",
    "OPSHERO_ENV",
    "DEBUG",
    "ALLOWED_HOSTS",
    "MEDIA_ROOT",
    "OPSHERO_VAR_DIR",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "SIGNING_MASTER_KEY",
    "EVIDENCE_MASTER_KEY",
)


def run(env_overrides, tmp_path, code=PROBE, args=None):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        {"DJANGO_SETTINGS_MODULE": "opshero.settings", "OPSHERO_VAR_DIR": str(tmp_path / "var")}
    )
    env.update(env_overrides)
    cmd = args or [sys.executable, "-c", code]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_embedded_defaults_use_sqlite_and_the_filesystem_broker(tmp_path):
    result = run({}, tmp_path)
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["db"] == "django.db.backends.sqlite3"
    assert s["db_name"] == str(tmp_path / "var" / "opshero.sqlite3")
    assert s["broker"] == "filesystem://"
    assert s["results"].startswith("file://")
    assert s["cache"].endswith("FileBasedCache")
    assert s["media"] == str(tmp_path / "var" / "media")
    assert s["debug"] is False
    assert s["hasher"].endswith("Argon2PasswordHasher")
    # The development secret key is generated once and reused.
    key = (tmp_path / "var" / "secret_key").read_text()
    assert len(key) >= 50
    assert run({}, tmp_path).returncode == 0
    assert (tmp_path / "var" / "secret_key").read_text() == key


def test_service_urls_switch_to_postgresql_and_redis(tmp_path):
    result = run(
        {
            "DATABASE_URL": "postgres://ops:pw@db.internal:5432/opshero",
            "REDIS_URL": "redis://cache:6379/0",
            "MEDIA_ROOT": "/srv/opshero/media",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["db"] == "django.db.backends.postgresql"
    assert s["db_name"] == "opshero"
    assert s["broker"] == "redis://cache:6379/0"
    assert s["results"] == "redis://cache:6379/0"
    assert s["cache"].endswith("RedisCache")
    assert s["media"] == "/srv/opshero/media"


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path):
    result = run({"OPSHERO_ENV": "production", "ALLOWED_HOSTS": "ops.example.com"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_unknown_environment_name_is_refused(tmp_path):
    result = run({"OPSHERO_ENV": "staging"}, tmp_path)
    assert result.returncode != 0
    assert "OPSHERO_ENV must be development or production" in result.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        "OPSHERO_ENV": "production",
        "SECRET_KEY": "k" * 20 + "8f3Jx!2mQz#" * 5,
        "ALLOWED_HOSTS": "ops.example.com",
        "SIGNING_MASTER_KEY": "c2lnbmluZy1tYXN0ZXIta2V5LWZvci10aGUtdGVzdC1ydW4hIQ==",
        "EVIDENCE_MASTER_KEY": "ZXZpZGVuY2UtbWFzdGVyLWtleS1mb3ItdGhlLXRlc3QtcnVuISE=",
        "DEBUG": "true",  # ignored in production
    }
    result = run(
        env,
        tmp_path,
        args=[sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    settings_dump = run(env, tmp_path)
    assert json.loads(settings_dump.stdout)["ssl_redirect"] is True
    assert json.loads(settings_dump.stdout)["debug"] is False


def test_production_requires_a_signing_master_key(tmp_path):
    env = {
        "OPSHERO_ENV": "production",
        "SECRET_KEY": "k" * 60,
        "ALLOWED_HOSTS": "ops.example.com",
    }
    result = run(env, tmp_path)
    assert result.returncode != 0
    assert "SIGNING_MASTER_KEY must be set in production" in result.stderr
    result = run({**env, "SIGNING_MASTER_KEY": "dG9vIHNob3J0"}, tmp_path)
    assert "at least 32 bytes" in result.stderr


def test_production_requires_its_own_evidence_master_key(tmp_path):
    signing = "c2lnbmluZy1tYXN0ZXIta2V5LWZvci10aGUtdGVzdC1ydW4hIQ=="
    env = {
        "OPSHERO_ENV": "production",
        "SECRET_KEY": "k" * 60,
        "ALLOWED_HOSTS": "ops.example.com",
        "SIGNING_MASTER_KEY": signing,
    }
    result = run(env, tmp_path)
    assert result.returncode != 0
    assert "EVIDENCE_MASTER_KEY must be set in production" in result.stderr
    result = run({**env, "EVIDENCE_MASTER_KEY": signing}, tmp_path)
    assert result.returncode != 0
    assert "EVIDENCE_MASTER_KEY must differ from SIGNING_MASTER_KEY" in result.stderr
