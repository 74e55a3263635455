"""python manage.py load_instrument FILE [--note TEXT]: store a questionnaire version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.core.times import shown
from studyserver.instrument.definition import InstrumentError, read_definition_file
from studyserver.instrument.versions import store_version


class Command(BaseCommand):
    help = (
        "Check a questionnaire YAML (the checks of check_instrument) and store it as a new, immutable "
        "version. Loading the same text again changes nothing. Point a study at it in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The questionnaire definition (YAML).")
        parser.add_argument("--note", default="", help="What changed, for the research team.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        self.stdout.write(f"Checking {path} …")
        try:
            source = read_definition_file(path)
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        except InstrumentError as error:
            raise CommandError(f"{path} was not stored.\n{error}") from None
        try:
            version, created = store_version(source, filename=path.name, note=options["note"])
        except InstrumentError as error:
            raise CommandError(f"{path} was not stored.\n{error}") from None
        instrument = version.instrument
        summary = (f"{len(instrument.pages)} pages, {len(instrument.answer_codes)} answer variables, "
                   f"consent version {version.consent_version}")
        if created:
            self.stdout.write(self.style.SUCCESS(
                f"Stored questionnaire version {version.label} ({version.content_hash[:12]}): {summary}."
            ))
        else:
            self.stdout.write(self.style.WARNING(
                f"Already stored as {version.label} ({version.content_hash[:12]}, loaded "
                f"{shown(version.created_at)}): nothing changed."
            ))
