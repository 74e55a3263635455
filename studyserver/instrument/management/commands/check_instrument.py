"""Validate the questionnaire definition: structure, conditions, and English/French parity."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from studyserver.instrument.definition import InstrumentError, load_instrument


class Command(BaseCommand):
    help = "Check the instrument definition (every text in English and French, codes unique, conditions valid)."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Definition file (default: settings.FLOODLIGHT_INSTRUMENT).")

    def handle(self, *args, **options):
        path = Path(options["path"] or settings.FLOODLIGHT_INSTRUMENT)
        try:
            instrument = load_instrument(path)
        except (InstrumentError, OSError) as error:
            raise CommandError(str(error)) from error
        pre = sum(len(p.items) for p in instrument.pages_in_phase("pre"))
        post = sum(len(p.items) for p in instrument.pages_in_phase("post"))
        self.stdout.write(
            self.style.SUCCESS(
                f"{instrument.version}: {len(instrument.pages)} pages, {pre} pre-treatment and {post} "
                f"post-treatment items, {len(instrument.texts)} page texts; English and French in parity."
            )
        )
