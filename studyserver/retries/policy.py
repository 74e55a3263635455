"""How work is retried: the one backoff policy of the project, on Celery's own backoff formula.

Two kinds of retry use it:

- *deferred work* (e-mails, image generation requests) that could not be done at once (a broker or
  mail server down) is retried by a scheduled sweep (:mod:`studyserver.retries.sweep`), later each
  time, up to a limit after which it is marked failed with the reason, for a researcher to see in
  the admin (``FLOODLIGHT_RETRY_*`` settings);
- a *generation task* that failed on a worker (storage, a flaky device, the soft time limit) is
  retried by Celery itself (``Task.retry``) sooner, on a shorter scale (the ``GENERATION_*`` values).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

# A generation task's own retries: 10 s, 20 s, 40 s… at most 10 minutes, 5 retries.
GENERATION_RETRY_BASE_SECONDS = 10
GENERATION_RETRY_MAX_SECONDS = 600
GENERATION_MAX_RETRIES = 5


def exponential(retries: int, base: float, cap: float) -> float:
    """``base × 2**retries``, capped at ``cap``: Celery's backoff (its ``retry_backoff`` option),
    without jitter so that waits are predictable and testable."""
    return get_exponential_backoff_interval(factor=base, retries=retries, maximum=cap, full_jitter=False)


def max_attempts() -> int:
    return settings.FLOODLIGHT_RETRY_MAX_ATTEMPTS


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try of deferred work: base, 2×base, 4×base… capped."""
    return timedelta(seconds=exponential(max(attempts - 1, 0), settings.FLOODLIGHT_RETRY_BASE_SECONDS,
                                         settings.FLOODLIGHT_RETRY_MAX_SECONDS))


def generation_retry_delay(retries: int) -> int:
    """The countdown before a generation task's retry number ``retries + 1``."""
    return int(exponential(retries, GENERATION_RETRY_BASE_SECONDS, GENERATION_RETRY_MAX_SECONDS))


def next_attempt_at(now: datetime, attempts: int) -> datetime:
    return now + backoff(attempts)


def grace() -> timedelta:
    """How long fresh work is left to the task queued for it before the sweep takes it over."""
    return timedelta(seconds=settings.FLOODLIGHT_SWEEP_GRACE_SECONDS)
