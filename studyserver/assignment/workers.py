"""Entry point of a simulation worker process.

Kept free of Django imports at module level: a spawned process imports this module before Django
is set up, then sets Django up itself with the parent's database settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# One draw as reported by a worker: (participant id, arm, slot id).
Draw = tuple[str, str, int]


@dataclass
class WorkerReport:
    draws: list[Draw] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def draw_all(participant_ids: Sequence[str], report: WorkerReport) -> None:
    """Draw for each participant in turn (a worker thread or process; Django is set up)."""
    from .models import participant_model
    from .services import assign

    Participant = participant_model()
    for participant_id in participant_ids:
        try:
            assignment = assign(Participant(pk=participant_id), verify_eligibility=False)
            report.draws.append((participant_id, assignment.arm, assignment.slot_id))
        except Exception as error:  # counted and reported, never hidden
            report.errors.append(f"{participant_id}: {type(error).__name__}: {error}")


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
    connection.ensure_connection()
    report = WorkerReport()
    ready.put(os.getpid())
    start.wait()
    try:
        draw_all(participant_ids, report)
    finally:
        connection.close()
        results.put((report.draws, report.errors))
