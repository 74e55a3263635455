"""python manage.py export_letters --study SLUG --out DIR [--user USERNAME]

Writes one PDF per member (each signed letter on its own page) and manifest.csv into DIR (new or
empty). The letters carry typed names, so the export is logged as a personal-data export; with
--user, that user must hold survey.export_personal_data.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.exports.management.commands.export_responses import resolve_study, resolve_user
from studyserver.exports.models import ExportLog
from studyserver.letters.delivery import (
    DeliveryError,
    check_output_folder,
    export_letters,
    write_folder,
)


class Command(BaseCommand):
    help = ("Export a study's signed letters to MPs: one PDF per member and manifest.csv "
            "(logged as a personal-data export).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--out", required=True, help="Output folder (created; must be new or empty).")
        parser.add_argument("--user", help="Username the export is made for (must hold "
                                           "survey.export_personal_data; logged).")

    def handle(self, *args: Any, **options: Any) -> None:
        study = resolve_study(options["study"])
        user = resolve_user(options.get("user"))
        try:
            folder = check_output_folder(options["out"])
        except DeliveryError as error:
            raise CommandError(str(error)) from None
        started = time.perf_counter()
        self.stdout.write(f"Exporting the signed letters of study {study.slug!r} …")
        try:
            delivery, files = export_letters(
                study, user=user, channel=ExportLog.Channel.COMMAND, username=f"(shell:{getpass.getuser()})",
                progress=lambda message: self.stdout.write(f"  {message}"))
            write_folder(files, folder)
        except (PermissionDenied, DeliveryError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {delivery.letter_count} letters in {len(delivery.bundles)} PDFs and manifest.csv to "
            f"{folder} in {time.perf_counter() - started:.1f} s (logged)."))
