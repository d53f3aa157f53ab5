"""Settings: production passes Django's deployment checks; the embedded default needs no server."""

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


def test_production_settings_pass_check_deploy_without_warnings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-value-0123456789",
            "DATABASE_URL": "postgres://canopy:secret@db.example.internal:5432/canopy",
            "REDIS_URL": "redis://redis.example.internal:6379/0",
            "DJANGO_ALLOWED_HOSTS": "canopy.example.internal",
            "CANOPY_FERNET_KEYS": "3J4R9s2VtUqXbYtE0vFQGkqvY3q8o6n1b5m0KcXx7aQ=",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


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
