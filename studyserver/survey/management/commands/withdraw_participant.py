"""Withdraw a participant's data by panel id (TCPS 2: consent is ongoing)."""

from django.core.management.base import BaseCommand, CommandError

from studyserver.studies.models import Study
from studyserver.survey import flow
from studyserver.survey.models import Participant, panel_id_digest


class Command(BaseCommand):
    help = "Delete a participant's answers and personal data, found by their panel id."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--panel-id", required=True)

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        participant = Participant.objects.filter(study=study, panel_id_hash=panel_id_digest(study.slug, options["panel_id"])).first()
        if participant is None:
            raise CommandError("No participant with that panel id in this study.")
        flow.withdraw(participant)
        self.stdout.write(self.style.SUCCESS(f"Participant {participant.pk} withdrawn: answers and personal data deleted."))
