"""Test settings: PostgreSQL (started by scripts/run-tests.sh), fast password hashing."""

from .base import *  # noqa: F403
from .base import derived_fernet_key, env

SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105  # nosec B105 # the test settings' own key, never deployed
DEBUG = False
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://canopy@127.0.0.1:55432/canopy"),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Kept connections as in production when a test's worker asks for them (tests/provisioning).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Two test runs against one server need different test databases.
DATABASES["default"]["TEST"] = {"NAME": env("CANOPY_TEST_DB_NAME", default="test_canopy")}

CANOPY_FERNET_KEYS = [derived_fernet_key(SECRET_KEY)]
# Tasks run in-process, except in the worker a test starts against its own Redis (tests/provisioning).
CELERY_TASK_ALWAYS_EAGER = env.bool("CANOPY_TEST_TASKS_EAGER", default=True)
