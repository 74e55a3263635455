"""System check: the configured instrument loads, with English and French in parity."""

from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from .definition import InstrumentError, get_instrument


@register()
def instrument_is_valid(app_configs, **kwargs):  # noqa: ARG001 - Django's check signature
    try:
        get_instrument()
    except (InstrumentError, OSError) as error:
        return [Error(str(error), id="instrument.E001")]
    return []


@register(Tags.database)
def real_studies_show_real_contacts(app_configs, databases=None, **kwargs):  # noqa: ARG001
    """Open or closed, a non-demo study whose questionnaire shows the sample's placeholder contacts
    is flagged (``check --database default``, and ``migrate``)."""
    from studyserver.studies.models import Study

    from .versions import instrument_problems

    if not databases:  # like Django's own database checks: only when asked (check --database, migrate)
        return []
    try:
        studies = list(Study.objects.filter(demo=False).select_related("questionnaire"))
    except DatabaseError:  # tables not there yet (before the first migrate)
        return []
    return [
        Warning(problem, hint=f"Study {study.slug!r}: revise the version with the real contacts (admin: Questionnaire versions → Revise) and point the study at it.",
                obj=study, id="instrument.W001")
        for study in studies if study.questionnaire_id
        for problem in instrument_problems(study.questionnaire, demo=False)
    ]
