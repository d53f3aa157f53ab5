"""Settings: production passes Django's deployment checks; the embedded default needs no server."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "portal.settings.production",
    "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-value-0123456789",
    "DATABASE_URL": "postgres://canopy:secret@db.example.internal:5432/canopy",
    "REDIS_URL": "redis://redis.example.internal:6379/0",
    "DJANGO_ALLOWED_HOSTS": "canopy.example.internal",
    "CANOPY_FERNET_KEYS": "3J4R9s2VtUqXbYtE0vFQGkqvY3q8o6n1b5m0KcXx7aQ=",
}


def test_production_settings_pass_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_keep_the_sign_in_rate_limit_and_hashed_api_tokens():
    """django-axes' own checks (its middleware and backend in place) run with --deploy above; here
    the production settings' security choices are read back."""
    result = _manage(
        "shell",
        "-c",
        "import json; from django.conf import settings as s; print(json.dumps(["
        "s.AUTHENTICATION_BACKENDS[0], s.MIDDLEWARE[-1], 'rest_framework.authtoken' in s.INSTALLED_APPS, "
        "s.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'], s.AXES_FAILURE_LIMIT, "
        "s.AXES_COOLOFF_TIME.total_seconds(), s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE]))",
        env={**PRODUCTION, "CANOPY_SIGN_IN_FAILURE_LIMIT": "3", "CANOPY_SIGN_IN_COOLOFF_MINUTES": "30"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "axes.backends.AxesStandaloneBackend",
        "axes.middleware.AxesMiddleware",
        False,
        ["identity.tokens.TokenAuthentication", "rest_framework.authentication.SessionAuthentication"],
        3,
        1800.0,
        True,
        True,
    ]


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
            "REDIS_URL": "redis://localhost:1/0",
        },
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_embedded_default_uses_sqlite_and_runs_tasks_in_process():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL)",
        env={"DJANGO_SETTINGS_MODULE": "portal.settings.local"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "django.db.backends.sqlite3",
        "True",
        "memory://",
    ]


def test_production_refuses_the_demo_usage_generator():
    result = _manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-value-0123456789",
            "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
            "REDIS_URL": "redis://localhost:1/0",
            "CANOPY_FERNET_KEYS": "3J4R9s2VtUqXbYtE0vFQGkqvY3q8o6n1b5m0KcXx7aQ=",
            "CANOPY_DEMO_USAGE": "true",
        },
    )
    assert result.returncode != 0
    assert "CANOPY_DEMO_USAGE is for the embedded demo only" in result.stderr


def _local_settings(*expressions: str, env: dict[str, str] | None = None) -> list:
    result = _manage(
        "shell",
        "-c",
        f"import json; from django.conf import settings as s; print(json.dumps([{', '.join(expressions)}]))",
        env={"DJANGO_SETTINGS_MODULE": "portal.settings.local", **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_has_debug_off_unless_asked_and_serves_static_files_itself():
    """Issue 15, point 5: a debug page lists the URL patterns and the settings to anyone."""
    whitenoise = "'whitenoise.middleware.WhiteNoiseMiddleware' in s.MIDDLEWARE"
    assert _local_settings("s.DEBUG", whitenoise, "s.WHITENOISE_USE_FINDERS") == [False, True, True]
    assert _local_settings("s.DEBUG", env={"DJANGO_DEBUG": "true"}) == [True]


def test_the_embedded_default_writes_sqlite_in_wal_mode_with_immediate_transactions(tmp_path):
    """Issue 15, point 4: concurrent writers wait their turn (tests/test_embedded_console.py)."""
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    options, journal = _local_settings(
        "s.DATABASES['default']['OPTIONS']",
        "__import__('django.db').db.connection.cursor().execute('PRAGMA journal_mode').fetchone()[0]",
        env={"DATABASE_URL": database},
    )
    assert options == {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL",
    }
    assert journal == "wal"
