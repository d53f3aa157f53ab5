"""Settings shared by every environment. Values come from the environment (see .env.example)."""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.admin_site.CanopyAdminConfig",  # django.contrib.admin, ids in range
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "treebeard",
    "tenants",
    "provisioning",
    "usage",  # after provisioning: it builds on it (docs/ARCHITECTURE.md)
    "quotas",  # quota requests and the inbox: built on tenants, provisioning and usage
    "identity",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names who acted in the audit rows of revocations that Django's own writers cause.
    "identity.middleware.ActingUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenants.middleware.GrantsPerRequestMiddleware",
    # Last, as django-axes asks: turns a sign-in refused by the lock-out into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
            ],
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "identity.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON nested too deep for Python's recursive parser is a 400 (tenants/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "tenants.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Id filters answer an id that names nothing visible as an empty page (tenants/api/filters.py).
    "DEFAULT_FILTER_BACKENDS": ["tenants.api.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "tenants.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "tenants.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tenants.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Canopy API",
    "DESCRIPTION": "Tenants, resource pools, allocations, storage, volumes and memberships of a shared cluster.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the installed sidecar package, not a CDN: clusters are often air-gapped.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Row ids in paths (tenants/converters.py): up to the largest id a row can have.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
    "ENUM_NAME_OVERRIDES": {
        "TenantStateEnum": "tenants.models.Tenant.State",
        "MembershipRoleEnum": "tenants.models.Membership.Role",
        "ClusterKindEnum": "tenants.models.Cluster.Kind",
    },
}

# API tokens (django-rest-knox): only a SHA-512 digest is stored; `Authorization: Token <key>`.
# CANOPY_API_TOKEN_HOURS=0 makes tokens that never expire.
CANOPY_API_TOKEN_HOURS = env.int("CANOPY_API_TOKEN_HOURS", default=10)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=CANOPY_API_TOKEN_HOURS) if CANOPY_API_TOKEN_HOURS > 0 else None,
    "AUTH_HEADER_PREFIX": "Token",
}

# Sign-in rate limit (django-axes): a user name is locked out from one address after this many
# failed sign-ins (console, admin, API token, LDAP alike), for the cool-off; a success resets the count.
AXES_FAILURE_LIMIT = env.int("CANOPY_SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("CANOPY_SIGN_IN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A locked-out user who keeps trying does not push the end of the cool-off further away.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False  # no banner on every manage.py command; failures are still logged
AXES_LOCKOUT_CALLABLE = "identity.views.lockout_response"
# Never copy these from a failed sign-in's form into axes' records.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]

# Celery: with no broker configured, tasks run in-process (the embedded default).
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE

# E-mail (quota requests' notifications): EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@mail.example.com:587, consolemail:// (printed: the embedded default's).
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="canopy@localhost")
# The console's address, for the links in e-mails ("" : links are paths only).
CANOPY_CONSOLE_URL = env("CANOPY_CONSOLE_URL", default="")

# Canopy's own settings.
CANOPY_MAX_TENANT_DEPTH = env.int("CANOPY_MAX_TENANT_DEPTH", default=10)
CANOPY_HDFS_ROOT = env("CANOPY_HDFS_ROOT", default="/tenant")
# Hive's warehouse (hive.metastore.warehouse.dir) on every Hadoop cluster: a tenant's Hive database
# `<name>` is pushed as its directory `<root>/<name>.db` (docs/provisioning-hadoop.md, "Services").
CANOPY_HIVE_WAREHOUSE_ROOT = env("CANOPY_HIVE_WAREHOUSE_ROOT", default="/warehouse/tablespace/managed/hive")

# Provisioning: pushing tenants to clusters (docs/provisioning.md).
# Fernet keys for cluster credentials at rest: the first encrypts, all decrypt. Required in production;
# local and test settings derive one from DJANGO_SECRET_KEY when it is unset.
CANOPY_FERNET_KEYS = env.list("CANOPY_FERNET_KEYS", default=[])


def derived_fernet_key(secret: str) -> str:
    """A Fernet key derived from a Django secret key: for local development and tests only."""
    digest = hashlib.sha256(f"canopy-fernet:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# Clusters without a connection: "none" (nothing is pushed until one is added) or "export" (manifests
# are written under CANOPY_EXPORT_DIR/<cluster>/<namespace>/ for GitOps).
CANOPY_PROVISIONING_DEFAULT_BACKEND = env("CANOPY_PROVISIONING_DEFAULT_BACKEND", default="none")
CANOPY_EXPORT_DIR = env("CANOPY_EXPORT_DIR", default=str(BASE_DIR / "export"))
CANOPY_KUBECONFIG_TOKEN_SECONDS = env.int("CANOPY_KUBECONFIG_TOKEN_SECONDS", default=8 * 3600)
CANOPY_KUBERNETES_TIMEOUT_SECONDS = env.float("CANOPY_KUBERNETES_TIMEOUT_SECONDS", default=10.0)
CANOPY_KUBERNETES_HTTP_RETRIES = env.int("CANOPY_KUBERNETES_HTTP_RETRIES", default=3)
# Defaults a container gets when it names no resources, kept inside the tenant's quota (LimitRange).
CANOPY_DEFAULT_REQUEST_CPU = env("CANOPY_DEFAULT_REQUEST_CPU", default="100m")
CANOPY_DEFAULT_REQUEST_MEMORY = env("CANOPY_DEFAULT_REQUEST_MEMORY", default="256Mi")
CANOPY_DEFAULT_LIMIT_CPU = env("CANOPY_DEFAULT_LIMIT_CPU", default="1")
CANOPY_DEFAULT_LIMIT_MEMORY = env("CANOPY_DEFAULT_LIMIT_MEMORY", default="1Gi")
# Retries of a failed push: base * 2^(attempt-1) seconds, at most the max.
CANOPY_PROVISIONING_RETRY_BASE_SECONDS = env.float("CANOPY_PROVISIONING_RETRY_BASE_SECONDS", default=5.0)
CANOPY_PROVISIONING_RETRY_MAX_SECONDS = env.float("CANOPY_PROVISIONING_RETRY_MAX_SECONDS", default=3600.0)
CANOPY_PROVISIONING_LEASE_SECONDS = env.float("CANOPY_PROVISIONING_LEASE_SECONDS", default=300.0)
# How long a push to a Hadoop cluster waits for another push to the same cluster before retrying
# later (a push may wait for a removed queue's applications: HadoopAccess.drain_timeout_seconds).
CANOPY_PROVISIONING_CLUSTER_LOCK_SECONDS = env.float(
    "CANOPY_PROVISIONING_CLUSTER_LOCK_SECONDS", default=180.0
)
# A pending intent whose task has not run after this long is sent again by beat.
CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS = env.float(
    "CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS", default=60.0
)
CANOPY_PROVISIONING_REPAIR_DRIFT = env.bool("CANOPY_PROVISIONING_REPAIR_DRIFT", default=True)
# Usage (issue 7): collection interval per cluster (a cluster row may override it), retention of
# raw samples and of the hourly and daily rollups. 10,000 tenants sampled every minute are about
# 14 M raw rows a day; see docs/performance.md for the sizes.
CANOPY_USAGE_INTERVAL_SECONDS = env.int("CANOPY_USAGE_INTERVAL_SECONDS", default=60)
CANOPY_USAGE_RAW_DAYS = env.int("CANOPY_USAGE_RAW_DAYS", default=2)
CANOPY_USAGE_HOURLY_DAYS = env.int("CANOPY_USAGE_HOURLY_DAYS", default=90)
CANOPY_USAGE_DAILY_DAYS = env.int("CANOPY_USAGE_DAILY_DAYS", default=730)
# Made-up usage for the embedded demo only; production settings refuse it.
CANOPY_DEMO_USAGE = env.bool("CANOPY_DEMO_USAGE", default=False)
# The currency the showback's price form offers until prices are set (issue 19).
CANOPY_SHOWBACK_CURRENCY = env.str("CANOPY_SHOWBACK_CURRENCY", default="EUR")
CELERY_BEAT_SCHEDULE = {
    # Checks which clusters are due (each has its own interval); cheap when none is.
    "usage-collect": {
        "task": "provisioning.usage_collect_due",
        "schedule": env.float("CANOPY_USAGE_BEAT_SECONDS", default=15.0),
    },
    "usage-rollup": {"task": "provisioning.usage_rollup_recent", "schedule": 300.0},
    "provisioning-redrive": {
        "task": "provisioning.redrive_intents",
        "schedule": env.float("CANOPY_PROVISIONING_REDRIVE_SECONDS", default=30.0),
    },
    # Time-bound grants (issue 19): back to the amounts before when their end time comes.
    "allocation-grants-end": {
        "task": "provisioning.allocation_grants_end_due",
        "schedule": env.float("CANOPY_ALLOCATION_GRANTS_BEAT_SECONDS", default=60.0),
    },
    "provisioning-reconcile": {
        "task": "provisioning.reconcile_all",
        "schedule": env.float("CANOPY_PROVISIONING_RECONCILE_SECONDS", default=600.0),
    },
}
# A web request that enqueues while the broker is down gives up quickly: the intent is in the
# database and beat sends it again.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# Signing in with LDAP / Active Directory or OpenID Connect (docs/authentication.md).
from .integrations import *  # noqa: E402, F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}
