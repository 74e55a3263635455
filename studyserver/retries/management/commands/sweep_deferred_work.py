"""Retry the deferred work that is due (information e-mails, image generation requests).

    python manage.py sweep_deferred_work              # once
    python manage.py sweep_deferred_work --every 60   # forever, like Celery beat (embedded mode)

A deployment does not need this: Celery beat runs the same sweep every FLOODLIGHT_SWEEP_SECONDS.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from studyserver.retries.sweep import sweep_deferred_work


class Command(BaseCommand):
    help = "Retry deferred work that is due: information e-mails and image generation requests."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, metavar="SECONDS",
                            help="Keep sweeping at this interval until stopped (default: once).")

    def handle(self, *args, **options):
        every = options["every"]
        while True:
            try:
                report = sweep_deferred_work()
            except Exception as error:  # noqa: BLE001 (a loop that outlives an outage; once: re-raised)
                if not every:
                    raise
                self.stderr.write(f"sweep failed, next try in {every:g} s: {error}")
            else:
                self.stdout.write(report.summary())
            if not every:
                return
            time.sleep(every)
            close_old_connections()  # as between requests: one broken by a database restart is replaced
