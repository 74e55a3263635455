"""Data step of 0002, in its own migration (transaction): see studies 0004."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def participants_keep_their_study_questionnaire(apps, schema_editor):
    """Existing participants answered their study's (then only) questionnaire."""
    participant_model = apps.get_model("survey", "Participant")
    study_model = apps.get_model("studies", "Study")
    version_model = apps.get_model("instrument", "InstrumentVersion")
    of_study = study_model.objects.filter(pk=OuterRef("study_id")).values("questionnaire")[:1]
    participant_model.objects.filter(questionnaire__isnull=True).update(questionnaire=Subquery(of_study))
    label = version_model.objects.filter(content_hash=OuterRef("questionnaire_id")).values("label")[:1]
    participant_model.objects.filter(instrument_version="").update(instrument_version=Subquery(label))


class Migration(migrations.Migration):

    dependencies = [
        ('survey', '0002_participant_questionnaire'),
        ('studies', '0004_instrument_version_existing_studies'),
    ]

    operations = [
        migrations.RunPython(participants_keep_their_study_questionnaire, migrations.RunPython.noop),
    ]
