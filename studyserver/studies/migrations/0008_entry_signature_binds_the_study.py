"""Entry signatures bind the study (HMAC over "<slug>:<panel id>"); copies get their own secret.

Studies made with "New study from this one" before this release share their pilot's secret: each
of them but the oldest gets a fresh one (the signature format changes anyway, so every signed link
must be generated again with the new message).
"""

import secrets

import studyserver.studies.models
from django.db import migrations, models


def separate_shared_secrets(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    seen = set()
    for study in Study.objects.order_by("created_at", "id").only("id", "entry_secret"):
        if study.entry_secret in seen:
            study.entry_secret = secrets.token_hex(32)
            study.save(update_fields=["entry_secret"])
        seen.add(study.entry_secret)


class Migration(migrations.Migration):

    dependencies = [
        ('studies', '0007_geocoding_thresholds'),
    ]

    operations = [
        migrations.AlterField(
            model_name='study',
            name='entry_secret',
            field=models.CharField(default=studyserver.studies.models.new_entry_secret, help_text='Shared with the panel only; changing it (or the slug) invalidates every signed link sent so far. A copy of the study gets a new one.', max_length=64),
        ),
        migrations.AlterField(
            model_name='study',
            name='require_signed_entry',
            field=models.BooleanField(default=False, help_text='Refuse entry links without a valid signature: sig = hex HMAC-SHA256 of "<study slug>:<panel id>" keyed with the entry secret below (set it in the panel\'s redirect). Stops anyone entering or resuming with a guessed panel id.'),
        ),
        migrations.RunPython(separate_shared_secrets, migrations.RunPython.noop),
    ]
