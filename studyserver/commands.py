"""What the project's management commands share: the ``--field NAME=COLUMN`` mapping of a loader."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.management.base import CommandError


def field_map(items: Iterable[str], allowed: Iterable[str]) -> dict[str, str]:
    """``--field NAME=COLUMN`` options as {NAME: COLUMN}; a clear error names what is expected."""
    names = list(allowed)
    mapping: dict[str, str] = {}
    for item in items:
        name, _, column = item.partition("=")
        if name not in names or not column:
            raise CommandError(f"--field {item!r}: expected NAME=COLUMN with NAME in {', '.join(names)}")
        mapping[name] = column
    return mapping
