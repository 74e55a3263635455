"""Settings for the test suite: the machine's real PostgreSQL and Redis, reference data beside the repo.

Every default can be overridden from the environment (CI sets nothing and gets these).
"""

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/floodlight")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("FLOODLIGHT_DEMO_MODE", "1")
os.environ.setdefault("FLOODLIGHT_REFERENCE_DATA", str(_REPO.parent / "shared" / "data"))
os.environ.setdefault("PGEOCODE_DATA_DIR", str(Path(os.environ["FLOODLIGHT_REFERENCE_DATA"]) / "pgeocode"))
os.environ.setdefault("FLOODLIGHT_VAR_DIR", str(_REPO / "var" / "test"))
# Unit tests run tasks inline; the tests of real task delivery start a worker with eager off.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (whitenoise warns about a missing folder otherwise)

# Throttling counters per test process (cleared before each test by conftest.py), never in the
# Redis that other runs share.
# The questions' markup cache as in production (tests run with DEBUG on, which turns it off).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
          "questions": QUESTION_MARKUP_CACHE}  # noqa: F405
