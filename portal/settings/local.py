"""The embedded default: SQLite, tasks in-process, debug on. Needs no external server."""

from .base import *  # noqa: F403
from .base import LOGGING, derived_fernet_key, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")

# Cluster credentials are encrypted with a key derived from the development secret key, and
# clusters with no connection get their manifests exported to files (the demo needs no cluster).
CANOPY_FERNET_KEYS = env.list("CANOPY_FERNET_KEYS", default=[derived_fernet_key(SECRET_KEY)])
CANOPY_PROVISIONING_DEFAULT_BACKEND = env("CANOPY_PROVISIONING_DEFAULT_BACKEND", default="export")
# With no cluster to read, `manage.py demo_usage` (started by scripts/console.sh) makes figures up,
# and every page that shows them says so.
CANOPY_DEMO_USAGE = env.bool("CANOPY_DEMO_USAGE", default=True)

# Pushes run in-process here: keep their per-task lines (and kombu's note about the in-memory
# broker having no host) out of the console, so the demo's printed passwords stay readable.
LOGGING["loggers"] = {
    "celery.app.trace": {"level": "WARNING"},
    "kombu.connection": {"level": "ERROR"},
}
