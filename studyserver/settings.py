"""Settings, all from environment variables.

With nothing set this is the *embedded default*: SQLite under ``var/``, Celery in eager mode,
e-mails written to ``var/mail``, the generator on CPU, demo mode on (a missing panel id is
allowed). Production sets at least ``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL``,
``ALLOWED_HOSTS`` and ``DEBUG=0``; ``python manage.py check --deploy`` is then clean.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FLOODLIGHT_VAR_DIR", BASE_DIR / "var"))
# The embedded SQLite database (personal data), uploads and mail logs live here: owner only.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if VAR_DIR.stat().st_uid == os.getuid():
    VAR_DIR.chmod(0o700)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default="DATABASE_URL" not in os.environ)
EMBEDDED = "DATABASE_URL" not in os.environ

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "embedded-default-insecure-key-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "studyserver.instrument",
    "studyserver.studies",
    "studyserver.geo",
    "studyserver.survey",
    "studyserver.assignment",
    "studyserver.treatments",
    "studyserver.exports",
    "studyserver.letters",
    "studyserver.retries",
    "axes",
    # Last: its post_migrate handler syncs the roles once every app's permissions exist.
    "studyserver.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "studyserver.accounts.middleware.AdminPermissionDeniedMiddleware",
    "studyserver.survey.errors.ServiceUnavailableMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studyserver.urls"
WSGI_APPLICATION = "studyserver.wsgi.application"

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
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
# A connection kept across requests is checked before reuse, so a database restart costs the
# next request a reconnect instead of an error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serves a classroom of concurrent participants when: readers never wait for the writer
    # (WAL), every transaction takes the write lock when it begins (IMMEDIATE: a deferred one that
    # reads and then writes cannot wait for the lock and fails with "database is locked" at once),
    # and a writer waits its turn for up to SQLITE_BUSY_TIMEOUT seconds instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    _sqlite = Path(DATABASES["default"]["NAME"])
    if _sqlite.exists() and _sqlite.stat().st_uid == os.getuid():
        _sqlite.chmod(0o600)  # personal data: owner only, even if the folder were opened up

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses logins while the username/address is locked out, counts failures.
    "axes.backends.AxesStandaloneBackend",
    "studyserver.accounts.backends.ResearcherBackend",
]

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is locked out for AXES_COOLOFF_HOURS (a lockout page, status 429).
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = env_bool("AXES_VERBOSE", False)  # lockouts are still logged as warnings
# Behind a reverse proxy: how many proxies append to X-Forwarded-For (0: use REMOTE_ADDR).
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("AXES_PROXY_COUNT", "0")) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
TIME_ZONE = "America/Toronto"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "templates" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    # S3-compatible object storage (keep the bucket in a Canadian region: ca-central-1).
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME", "ca-central-1"),
            "querystring_auth": True,
        },
    }

# Request limits: a survey page is a few hundred bytes; refuse anything absurd with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024))
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "studyserver.survey.views.csrf_failure"

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Off only for a plain-HTTP run on loopback (benchmarks/participant_flow.py); never in the field.
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response: scripts, images, fonts and connections from this
# site only (the API docs' Swagger UI is served from our static files). Inline style attributes
# stay allowed: the participant pages use them for the progress bar and the exposure delay.
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message for another one
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"treatments.*": {"queue": "gpu"}}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 900))}
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 600))
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", 540))
CELERY_TIMEZONE = TIME_ZONE
# Workers and beat that start while the broker is down wait for it instead of exiting.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Deferred work (e-mails, image generation requests) that could not be done at once is retried by
# a sweep that Celery beat runs (`celery -A studyserver beat`; embedded: `manage.py sweep_deferred_work --every 60`).
FLOODLIGHT_SWEEP_SECONDS = float(os.environ.get("FLOODLIGHT_SWEEP_SECONDS", "60"))
FLOODLIGHT_SWEEP_GRACE_SECONDS = float(os.environ.get("FLOODLIGHT_SWEEP_GRACE_SECONDS", "120"))
FLOODLIGHT_RETRY_BASE_SECONDS = float(os.environ.get("FLOODLIGHT_RETRY_BASE_SECONDS", "30"))
FLOODLIGHT_RETRY_MAX_SECONDS = float(os.environ.get("FLOODLIGHT_RETRY_MAX_SECONDS", "3600"))
FLOODLIGHT_RETRY_MAX_ATTEMPTS = int(os.environ.get("FLOODLIGHT_RETRY_MAX_ATTEMPTS", "8"))
CELERY_BEAT_SCHEDULE = {
    "sweep-deferred-work": {
        "task": "retries.sweep_deferred_work",
        "schedule": FLOODLIGHT_SWEEP_SECONDS,
        # Sweeps that piled up while the broker was down are dropped: the next one does their work.
        "options": {"expires": FLOODLIGHT_SWEEP_SECONDS},
    },
}

# --- E-mail (information requested by participants) -----------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend" if EMBEDDED else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = Path(os.environ.get("EMAIL_FILE_PATH", VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# A mail server that accepts the connection and then hangs must not hold a worker forever.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Floodlight study <study@example.org>")

# --- Cache (API throttling counters) ------------------------------------------------------------
# Shared by every web worker through Redis when there is one; per process otherwise.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": "floodlight"}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff with exports.export_data (the data manager role) only; see studyserver/accounts/roles.py.
    "DEFAULT_PERMISSION_CLASSES": ["studyserver.accounts.permissions.CanUseResearchApi"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "30/hour"),
        "user": os.environ.get("API_THROTTLE_USER", "1000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Floodlight research API",
    "DESCRIPTION": "Read-only access to the study export and the participant funnel.",
    "VERSION": "1",
    # The schema and the docs need the same login as the API; Swagger UI comes from our static
    # files (drf-spectacular-sidecar), never from a third-party CDN.
    "SERVE_PERMISSIONS": ["studyserver.accounts.permissions.CanUseResearchApi"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- The study --------------------------------------------------------------------------------
# Demo mode: a missing panel id is allowed (the README's first command). Never on in the field.
FLOODLIGHT_DEMO_MODE = env_bool("FLOODLIGHT_DEMO_MODE", default=DEBUG)
# A participant not seen for this long, and not finished, counts as "abandoned" in the funnel.
FLOODLIGHT_ABANDONED_AFTER_HOURS = int(os.environ.get("FLOODLIGHT_ABANDONED_AFTER_HOURS", "24"))

# Panel exit redirects; {pid} is replaced by the URL-encoded panel respondent id (and {NAME} by a
# study's kept entry parameter). The /done/ defaults are the demo's stand-in pages: a study that is
# not a demo cannot open on them (studies.readiness).
PANEL_COMPLETE_URL = os.environ.get("PANEL_COMPLETE_URL", "/done/complete/?pid={pid}")
PANEL_SCREENOUT_URL = os.environ.get("PANEL_SCREENOUT_URL", "/done/screenout/?pid={pid}")
PANEL_OVERQUOTA_URL = os.environ.get("PANEL_OVERQUOTA_URL", "/done/overquota/?pid={pid}")
PANEL_DECLINED_URL = os.environ.get("PANEL_DECLINED_URL", "/done/declined/?pid={pid}")
# The instrument (questionnaire) definition file; one source of truth for forms and exports.
FLOODLIGHT_INSTRUMENT = Path(
    os.environ.get("FLOODLIGHT_INSTRUMENT", BASE_DIR / "studyserver" / "instrument" / "definitions" / "floodlight-v1.yaml")
)
# Reference data (districts, FSA centroids). Tests, CI and the demo point this at ../shared/data;
# a deployment points it at the official files it downloaded (see README).
FLOODLIGHT_REFERENCE_DATA = os.environ.get("FLOODLIGHT_REFERENCE_DATA", "")
PGEOCODE_DATA_DIR = os.environ.get("PGEOCODE_DATA_DIR", "")
# The generator: device ("cpu", "cuda"), checkpoints; empty means the reference backend.
GENERATOR_DEVICE = os.environ.get("GENERATOR_DEVICE", "cpu")
# A gpu-queue task floods up to this many waiting stimuli in one batch (1: one at a time).
GENERATOR_BATCH_SIZE = int(os.environ.get("GENERATOR_BATCH_SIZE", "8"))
GENERATOR_MASKER_CHECKPOINT = os.environ.get("GENERATOR_MASKER_CHECKPOINT", "")
GENERATOR_PAINTER_CHECKPOINT = os.environ.get("GENERATOR_PAINTER_CHECKPOINT", "")
STREETVIEW_API_KEY = os.environ.get("STREETVIEW_API_KEY", "")
STREETVIEW_BASE_URL = os.environ.get("STREETVIEW_BASE_URL", "https://maps.googleapis.com/maps/api/streetview")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Panel ids and entry signatures in query strings never reach the logs (see README: proxies).
    "filters": {"redact_panel_ids": {"()": "studyserver.accounts.logging.RedactPanelIds"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_panel_ids"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
