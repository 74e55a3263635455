"""Entry point of a simulation worker process.

Kept free of Django imports at module level: a spawned process imports this module before Django
is set up, then sets Django up itself with the parent's database settings.
"""

from __future__ import annotations

import os
from typing import Any


def process_worker(
    settings_module: str,
    database: dict[str, Any],
    participant_ids: list[str],
    ready: Any,
    start: Any,
    results: Any,
) -> None:
    """Connect, say ready, wait for the start signal, draw for every participant, report."""
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # The parent may be on a test database (pytest-django renames it); use exactly its settings.
    settings.DATABASES["default"].update(database)
    from .simulation import WorkerReport, draw_all

    connection.ensure_connection()
    report = WorkerReport()
    ready.put(os.getpid())
    start.wait()
    try:
        draw_all(participant_ids, report)
    finally:
        connection.close()
        results.put((report.draws, report.errors))
