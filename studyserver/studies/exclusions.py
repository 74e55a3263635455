"""The study's pre-registered exclusion rule: a choice of respondent-quality flags, frozen at opening.

The flags themselves (name, description, rule) are defined once in ``studyserver.quality``, a
higher layer that this app never imports: quality registers its flags here when Django starts
(``QualityConfig.ready``), the way higher apps add their deferred work to ``retries``. The study
form offers the registered names; the study keeps the chosen names and, once opened, the time
they were frozen (``Study.exclusion_frozen_at``).
"""

from __future__ import annotations

_FLAGS: dict[str, str] = {}


def register_flag(name: str, label: str) -> None:
    """Offer ``name`` (with a one-line ``label``) as a choice of the exclusion rule."""
    _FLAGS[name] = label


def flag_names() -> list[str]:
    """Every registered flag, in registration order."""
    return list(_FLAGS)


def flag_choices() -> list[tuple[str, str]]:
    """(name, "name: label") for the study form's checkboxes (a callable: read when the form is built)."""
    return [(name, f"{name}: {label}") for name, label in _FLAGS.items()]


def unknown_flags(names: list[str]) -> list[str]:
    """The names in ``names`` no app registered (empty when every flag exists)."""
    return [name for name in names if name not in _FLAGS]
