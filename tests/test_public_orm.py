"""The web code stays on Django's public API (issue 21): no query compilation by hand, no session or
model-state internals, and raw SQL only where a module says why."""

from __future__ import annotations

from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "studyserver"
PRIVATE = ("django.db.models.sql", "get_compiler", "get_related_populators", "_session_cache",
           "._state", "apply_converters")


def _modules() -> list[Path]:
    return [path for path in SOURCE.rglob("*.py") if "tests" not in path.parts and "migrations" not in path.parts]


@pytest.mark.parametrize("needle", PRIVATE)
def test_no_module_uses_djangos_internals(needle):
    assert len(_modules()) > 50
    assert [str(path.relative_to(SOURCE)) for path in _modules() if needle in path.read_text()] == []


def test_raw_sql_only_for_the_assignments_lock_order():
    # The stratum cursor taken in one locking statement and SQLite's writer lock taken first
    # (assignment/services.py says why); /healthz's "SELECT 1" is the database answering.
    raw = sorted(str(path.relative_to(SOURCE)) for path in _modules() if "cursor.execute(" in path.read_text())
    assert raw == ["assignment/services.py", "survey/views.py"]
