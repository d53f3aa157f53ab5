"""Production: every secret from the environment, HTTPS enforced, PostgreSQL and Redis required."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import MIDDLEWARE, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
# A kept connection the server has dropped meanwhile (restart, failover, idle timeout) is replaced
# before a request or task uses it, instead of failing it.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# WhiteNoise serves the collected static files in production (right after the security middleware);
# the embedded default has it serve them from static/ without collecting (local.py).
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Production never runs tasks in the web process: a broker is required.
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False

# Cluster credentials are encrypted at rest with these keys; there is no default in production.
CANOPY_FERNET_KEYS = env.list("CANOPY_FERNET_KEYS", default=[])
if not CANOPY_FERNET_KEYS:
    raise ImproperlyConfigured(
        "Set CANOPY_FERNET_KEYS: Canopy encrypts cluster credentials with it. Make a key with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
    )

# The demo usage generator makes figures up: never in production.
if env.bool("CANOPY_DEMO_USAGE", default=False):
    raise ImproperlyConfigured("CANOPY_DEMO_USAGE is for the embedded demo only; unset it in production.")
CANOPY_DEMO_USAGE = False
