"""The embedded default: SQLite, tasks in-process. Needs no external server."""

import re
import warnings

from .base import *  # noqa: F403
from .base import DATABASES, LOGGING, MIDDLEWARE, STATIC_ROOT, derived_fernet_key, env

# Off unless asked for: a debug page lists every URL pattern (404) or the settings and the traceback
# (500) to whoever reaches the console. DJANGO_DEBUG=true turns it on for development.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")

# Cluster credentials are encrypted with a key derived from the development secret key, and
# clusters with no connection get their manifests exported to files (the demo needs no cluster).
CANOPY_FERNET_KEYS = env.list("CANOPY_FERNET_KEYS", default=[derived_fernet_key(SECRET_KEY)])
CANOPY_PROVISIONING_DEFAULT_BACKEND = env("CANOPY_PROVISIONING_DEFAULT_BACKEND", default="export")
# With no cluster to read, `manage.py demo_usage` (started by scripts/console.sh) makes figures up,
# and every page that shows them says so.
CANOPY_DEMO_USAGE = env.bool("CANOPY_DEMO_USAGE", default=True)
# Notifications' e-mails are printed by runserver (no mail server needed); EMAIL_URL sends them.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
CANOPY_CONSOLE_URL = env("CANOPY_CONSOLE_URL", default="http://127.0.0.1:8000")

# SQLite has one writer at a time. With its default rollback journal and deferred transactions, a
# request that has read inside a transaction and then writes fails at once with "database is
# locked" while another one writes (the live check as you type against the submit, the demo usage
# generator, API scripts): the busy timeout cannot help a read lock that must become a write lock.
# WAL lets reads go on beside the writer, and IMMEDIATE transactions take the write lock when they
# begin, where the busy timeout makes the next writer wait its turn instead of failing.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES = {
        "default": {
            **DATABASES["default"],
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL",
            },
        }
    }

# With debug off runserver serves no static files: WhiteNoise serves them from static/ (and the
# installed apps') as it does the collected ones in production. Nothing is collected here, so its
# note about the missing collectstatic folder is only noise.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message=f"No directory at: {re.escape(STATIC_ROOT)}")

# Pushes run in-process here: keep their per-task lines (and kombu's note about the in-memory
# broker having no host) out of the console, so the demo's printed passwords stay readable.
LOGGING["loggers"] = {
    "celery.app.trace": {"level": "WARNING"},
    "kombu.connection": {"level": "ERROR"},
}
