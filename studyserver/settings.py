"""Settings, all from environment variables (parsed by django-environ).

They fail closed: outside the *embedded default* nothing insecure is switched on by omission.
Production sets at least ``DATABASE_URL`` and ``SECRET_KEY`` (and ``REDIS_URL``,
``ALLOWED_HOSTS``); without them the process refuses to start with a message naming what is
missing. ``DEBUG`` and demo mode are off unless set; ``python manage.py check --deploy`` is clean.

The embedded default is chosen explicitly with ``FLOODLIGHT_EMBEDDED=1`` (``make demo`` sets it):
SQLite under ``FLOODLIGHT_VAR_DIR`` (``var/``), Celery in eager mode, e-mails written to
``var/mail``, ``DEBUG`` on with a fixed development secret, demo mode on (a missing panel id is
allowed). Importing this module writes nothing: the owner-only ``var/`` folder is made when the
apps are ready (``studyserver.accounts.apps``).
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()
# A value starting with "$" names another variable (django-environ's proxy); write "\\$" for a
# literal dollar sign at the start of a password.
env.escape_proxy = True

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("FLOODLIGHT_VAR_DIR", default=str(BASE_DIR / "var")))

EMBEDDED = env.bool("FLOODLIGHT_EMBEDDED", default=False)
DEBUG = env.bool("DEBUG", default=EMBEDDED)

SECRET_KEY = env.str("SECRET_KEY", default="")
_missing = []
if not SECRET_KEY:
    if EMBEDDED and DEBUG:
        SECRET_KEY = "embedded-default-insecure-key-" + "x" * 40
    else:
        _missing.append("SECRET_KEY must be set (50 random characters)")
if not EMBEDDED and not env.str("DATABASE_URL", default=""):
    _missing.append("DATABASE_URL must be set (e.g. postgres://user:pass@host:5432/floodlight)")
if _missing:
    raise ImproperlyConfigured(
        "; ".join(_missing) + ". For the embedded SQLite demo on this machine set FLOODLIGHT_EMBEDDED=1 "
        "instead (`make demo` does); see README, Configuration."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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
    "studyserver.quality",
    "studyserver.exports",
    "studyserver.letters",
    "studyserver.fielding",
    "studyserver.retries",
    "axes",
    # Last: its post_migrate handler syncs the roles once every app's permissions exist.
    "studyserver.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "studyserver.survey.sessions.BrowserParticipantsMiddleware",
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
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
# A connection kept across requests is checked before reuse, so a database restart costs the
# next request a reconnect instead of an error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serves a classroom of concurrent participants when: readers never wait for the writer
    # (WAL), every transaction takes the write lock when it begins (IMMEDIATE: a deferred one that
    # reads and then writes cannot wait for the lock and fails with "database is locked" at once),
    # and a writer waits its turn for up to SQLITE_BUSY_TIMEOUT seconds instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=30.0),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses logins while the username/address is locked out, counts failures.
    "axes.backends.AxesStandaloneBackend",
    # Then: refuses every attempt from an address that failed too often (studyserver/accounts/lockout.py).
    "studyserver.accounts.lockout.AddressThrottleBackend",
    "studyserver.accounts.backends.ResearcherBackend",
]

# Login lockout (policy: studyserver/accounts/lockout.py, README: Roles). django-axes locks one
# username from one address after AXES_FAILURE_LIMIT wrong passwords, for AXES_COOLOFF_HOURS (a
# lockout page, status 429); an address failing LOGIN_ADDRESS_FAILURE_LIMIT times, whatever the
# usernames, is refused for as long.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = env.bool("AXES_VERBOSE", default=False)  # lockouts are still logged as warnings
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
# Behind reverse proxies: how many of them append to X-Forwarded-For (0: none, REMOTE_ADDR is the
# client). Compose requires it; `check --deploy` warns when it is not set (accounts.W001).
# (not named AXES_PROXY_COUNT here: django-axes would take it for its deprecated ipware setting)
TRUSTED_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
TRUSTED_PROXY_COUNT_SET = bool(env.str("AXES_PROXY_COUNT", default=""))
AXES_CLIENT_IP_CALLABLE = "studyserver.accounts.lockout.client_address"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
# The one zone every time is shown in (admin, messages, export file names, letter zips), always
# named ("EST"); data files keep UTC ("Z"). Default: Eastern, where the House of Commons sits.
TIME_ZONE = env.str("TIME_ZONE", default="America/Toronto")
FORMAT_MODULE_PATH = ["studyserver.core.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "templates" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
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
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    # S3-compatible object storage (keep the bucket in a Canadian region: ca-central-1).
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="ca-central-1"),
            "querystring_auth": True,
        },
    }

# Request limits: a survey page is a few hundred bytes; refuse anything absurd with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "studyserver.survey.views.csrf_failure"

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Off only for a plain-HTTP run on loopback (benchmarks/participant_flow.py); never in the field.
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
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
REDIS_URL = env.str("REDIS_URL", default="")
# Without Redis, tasks run eagerly; Celery still opens a producer on the broker URL, and a URL
# without a host makes kombu warn "No hostname was supplied" on every command that queues work.
EMBEDDED_BROKER_URL = "memory://localhost/"
CELERY_BROKER_URL = REDIS_URL or EMBEDDED_BROKER_URL
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message for another one
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"treatments.*": {"queue": "gpu"}}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900)}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_TIMEZONE = TIME_ZONE
# Workers and beat that start while the broker is down wait for it instead of exiting.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Deferred work (e-mails, image generation requests) that could not be done at once is retried by
# a sweep that Celery beat runs (`celery -A studyserver beat`; embedded: `manage.py sweep_deferred_work --every 60`).
FLOODLIGHT_SWEEP_SECONDS = env.float("FLOODLIGHT_SWEEP_SECONDS", default=60.0)
FLOODLIGHT_SWEEP_GRACE_SECONDS = env.float("FLOODLIGHT_SWEEP_GRACE_SECONDS", default=120.0)
FLOODLIGHT_RETRY_BASE_SECONDS = env.float("FLOODLIGHT_RETRY_BASE_SECONDS", default=30.0)
FLOODLIGHT_RETRY_MAX_SECONDS = env.float("FLOODLIGHT_RETRY_MAX_SECONDS", default=3600.0)
FLOODLIGHT_RETRY_MAX_ATTEMPTS = env.int("FLOODLIGHT_RETRY_MAX_ATTEMPTS", default=8)
CELERY_BEAT_SCHEDULE = {
    "sweep-deferred-work": {
        "task": "retries.sweep_deferred_work",
        "schedule": FLOODLIGHT_SWEEP_SECONDS,
        # Sweeps that piled up while the broker was down are dropped: the next one does their work.
        "options": {"expires": FLOODLIGHT_SWEEP_SECONDS},
    },
}

# --- E-mail (information requested by participants) -----------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.filebased.EmailBackend" if EMBEDDED
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = Path(env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail")))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# A mail server that accepts the connection and then hangs must not hold a worker forever.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Floodlight study <study@example.org>")

# --- Cache (API throttling counters, sessions, the MPs on the letter page) ----------------------
# Shared by every web worker through Redis when there is one; per process otherwise.
# The questions' markup (survey.forms.QuestionField) per web process: built from the questionnaire
# version, the language and the option ticked, never from typed text, so it is the same bytes for
# every participant on that answer. With DEBUG on, an edited template shows at once.
QUESTION_MARKUP_CACHE = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "questions",
    "TIMEOUT": None,
    "OPTIONS": {"MAX_ENTRIES": 20000},
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": "floodlight"}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "questions": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"} if DEBUG else QUESTION_MARKUP_CACHE,
}

# Sessions are the admin's (a participant's browser keeps its participants in a signed cookie,
# studyserver/survey/sessions.py). With Redis (shared by every web worker) read from the cache,
# without it (a per-process cache could serve another worker's stale copy) from the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # A wrong token counts against the anonymous rate (studyserver/accounts/throttling.py).
        "studyserver.accounts.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff with exports.export_data (the data manager role) only; see studyserver/accounts/roles.py.
    "DEFAULT_PERMISSION_CLASSES": ["studyserver.accounts.permissions.CanUseResearchApi"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Logged-in users: UserRateThrottle. Requests without a valid login are counted (per address)
    # by the permission and the token authentication, since DRF answers them before its throttles.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    # Client addresses (for any address-keyed rate): the proxies' count, never a client's own header.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="30/hour"),
        "user": env.str("API_THROTTLE_USER", default="1000/hour"),
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
# Demo mode: a missing panel id is allowed (the README's first command). Never on in the field:
# only the embedded default turns it on by itself.
FLOODLIGHT_DEMO_MODE = env.bool("FLOODLIGHT_DEMO_MODE", default=EMBEDDED)
# A participant not seen for this long, and not finished, counts as "abandoned" in the funnel.
FLOODLIGHT_ABANDONED_AFTER_HOURS = env.int("FLOODLIGHT_ABANDONED_AFTER_HOURS", default=24)

# Respondent-quality flags (studyserver/quality/flags.py; the codebook words each rule with these).
# Speeding: under this fraction of the study's median time, judged once it has this many completes.
QUALITY_SPEEDING_FRACTION = env.float("QUALITY_SPEEDING_FRACTION", default=0.4)
QUALITY_SPEEDING_MIN_COMPLETES = env.int("QUALITY_SPEEDING_MIN_COMPLETES", default=10)
# Straight-lining: a page with at least this many scale items is a battery.
QUALITY_STRAIGHT_LINING_MIN_ITEMS = env.int("QUALITY_STRAIGHT_LINING_MIN_ITEMS", default=5)
# Too fast: this many pages submitted faster than their text reads at this speed.
QUALITY_READING_WORDS_PER_MINUTE = env.int("QUALITY_READING_WORDS_PER_MINUTE", default=1000)
QUALITY_TOO_FAST_MIN_PAGES = env.int("QUALITY_TOO_FAST_MIN_PAGES", default=3)
# The medians a new complete is judged against are re-read at most this often (the export reads them all).
QUALITY_MEDIANS_CACHE_SECONDS = env.int("QUALITY_MEDIANS_CACHE_SECONDS", default=300)

# Panel exit redirects; {pid} is replaced by the URL-encoded panel respondent id (and {NAME} by a
# study's kept entry parameter). The /done/ defaults are the demo's stand-in pages: a study that is
# not a demo cannot open on them (fielding.readiness).
PANEL_COMPLETE_URL = env.str("PANEL_COMPLETE_URL", default="/done/complete/?pid={pid}")
PANEL_SCREENOUT_URL = env.str("PANEL_SCREENOUT_URL", default="/done/screenout/?pid={pid}")
PANEL_OVERQUOTA_URL = env.str("PANEL_OVERQUOTA_URL", default="/done/overquota/?pid={pid}")
PANEL_DECLINED_URL = env.str("PANEL_DECLINED_URL", default="/done/declined/?pid={pid}")
# The instrument (questionnaire) definition file; one source of truth for forms and exports.
FLOODLIGHT_INSTRUMENT = Path(
    env.str("FLOODLIGHT_INSTRUMENT",
            default=str(BASE_DIR / "studyserver" / "instrument" / "definitions" / "floodlight-v1.yaml"))
)
# Reference data (districts, FSA centroids). Tests, CI and the demo point this at ../shared/data;
# a deployment points it at the official files it downloaded (see README).
FLOODLIGHT_REFERENCE_DATA = env.str("FLOODLIGHT_REFERENCE_DATA", default="")
PGEOCODE_DATA_DIR = env.str("PGEOCODE_DATA_DIR", default="")
# The generator: device ("cpu", "cuda"), checkpoints; empty means the reference backend.
GENERATOR_DEVICE = env.str("GENERATOR_DEVICE", default="cpu")
# A gpu-queue task floods up to this many waiting stimuli in one batch (1: one at a time).
GENERATOR_BATCH_SIZE = env.int("GENERATOR_BATCH_SIZE", default=8)
GENERATOR_MASKER_CHECKPOINT = env.str("GENERATOR_MASKER_CHECKPOINT", default="")
GENERATOR_PAINTER_CHECKPOINT = env.str("GENERATOR_PAINTER_CHECKPOINT", default="")
STREETVIEW_API_KEY = env.str("STREETVIEW_API_KEY", default="")
STREETVIEW_BASE_URL = env.str("STREETVIEW_BASE_URL", default="https://maps.googleapis.com/maps/api/streetview")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Panel ids and entry signatures in query strings never reach the logs (see README: proxies).
    "filters": {"redact_panel_ids": {"()": "studyserver.accounts.logging.RedactPanelIds"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_panel_ids"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
