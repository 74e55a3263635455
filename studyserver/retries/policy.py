"""How deferred work is retried: one backoff policy for e-mails and image generation requests.

Work that could not be done at once (a broker or mail server down) is retried by a scheduled sweep
(:mod:`studyserver.retries.sweep`), later each time, up to a limit after which it is marked failed
with the reason, for a researcher to see in the admin.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings


def max_attempts() -> int:
    return settings.FLOODLIGHT_RETRY_MAX_ATTEMPTS


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: base, 2×base, 4×base… capped."""
    base = settings.FLOODLIGHT_RETRY_BASE_SECONDS
    return timedelta(seconds=min(settings.FLOODLIGHT_RETRY_MAX_SECONDS, base * 2 ** max(attempts - 1, 0)))


def next_attempt_at(now: datetime, attempts: int) -> datetime:
    return now + backoff(attempts)


def grace() -> timedelta:
    """How long fresh work is left to the task queued for it before the sweep takes it over."""
    return timedelta(seconds=settings.FLOODLIGHT_SWEEP_GRACE_SECONDS)
