"""System checks: the panel exit URL settings are usable http(s) templates (or the demo's local
pages); a real study does not show the sample questionnaire's placeholder contacts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from studyserver.instrument.versions import instrument_problems

from .models import EXIT_KINDS, Study, exit_url_problems


@checks.register(checks.Tags.compatibility)
def panel_exit_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for kind in EXIT_KINDS:
        name = f"PANEL_{kind.upper()}_URL"
        for problem in exit_url_problems(getattr(settings, name), {"pid"}, allow_local=True):
            errors.append(checks.Error(f"{name}: {problem}", id="studies.E001"))
    return errors


@checks.register(checks.Tags.database)
def real_studies_show_real_contacts(app_configs, databases=None, **kwargs):  # noqa: ARG001
    """Open or closed, a non-demo study whose questionnaire shows the sample's placeholder contacts
    is flagged (``check --database default``, and ``migrate``)."""
    if not databases:  # like Django's own database checks: only when asked (check --database, migrate)
        return []
    try:
        studies = list(Study.objects.filter(demo=False).select_related("questionnaire"))
    except DatabaseError:  # tables not there yet (before the first migrate)
        return []
    return [
        checks.Warning(problem, hint=f"Study {study.slug!r}: revise the version with the real contacts (admin: Questionnaire versions → Revise) and point the study at it.",
                obj=study, id="instrument.W001")  # its id since it lived in instrument
        for study in studies if study.questionnaire_id
        for problem in instrument_problems(study.questionnaire, demo=False)
    ]
