"""The project's Celery application, with image generation held for a while in each pool process.

For the killed-worker test: ``celery -A tests.support.held_worker worker ...`` marks the task
started as usual, then waits ``FLOODLIGHT_TEST_HOLD_SECONDS`` (default 60) before generating, so
the test can SIGKILL the worker mid-task. The hold is a mock installed here, in the worker's
own processes: production code reads no test setting.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import worker_process_init

from studyserver.celery import app

__all__ = ["app"]

HOLD_SECONDS_ENV = "FLOODLIGHT_TEST_HOLD_SECONDS"


@worker_process_init.connect
def hold_generation(**_: Any) -> None:
    """In each prefork child (Django is set up by then): generation starts after the hold."""
    from studyserver.treatments import tasks

    generate = tasks._generate_many
    seconds = float(os.environ.get(HOLD_SECONDS_ENV, "60"))

    def held(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return generate(*args, **kwargs)

    tasks._generate_many = held
