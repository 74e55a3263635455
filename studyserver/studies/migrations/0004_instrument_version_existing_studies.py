"""Data step of 0003, in its own migration (transaction): PostgreSQL cannot create 0003's index on a
table with pending deferred-constraint events from the same transaction's updates."""

import django.utils.timezone
from django.conf import settings
from django.db import migrations


def existing_studies_keep_their_questionnaire(apps, schema_editor):
    """Studies fielded before versions were stored ran on the deployment's FLOODLIGHT_INSTRUMENT:
    store that file as a version and point every existing study at it."""
    from studyserver.instrument.definition import read_definition
    from studyserver.instrument.versions import version_fields

    study_model = apps.get_model("studies", "Study")
    version_model = apps.get_model("instrument", "InstrumentVersion")
    if not study_model.objects.filter(questionnaire__isnull=True).exists():
        return
    source, _ = read_definition(settings.FLOODLIGHT_INSTRUMENT)
    fields = version_fields(source, str(settings.FLOODLIGHT_INSTRUMENT))
    version = version_model.objects.filter(content_hash=fields["content_hash"]).first()
    if version is None:
        version = version_model.objects.create(**fields, note="Loaded by the migration for existing studies.")
    study_model.objects.filter(questionnaire__isnull=True).update(
        questionnaire=version, questionnaire_since=django.utils.timezone.now(),
        consent_version=version.consent_version,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('studies', '0003_instrument_version'),
    ]

    operations = [
        migrations.RunPython(existing_studies_keep_their_questionnaire, migrations.RunPython.noop),
    ]
