"""python manage.py export_codebook --format csv|md --out PATH [--study SLUG]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.exports.codebook import build_codebook, codebook_csv, codebook_markdown
from studyserver.exports.export import study_instruments
from studyserver.exports.formats import atomic_write, check_writable
from studyserver.exports.management.commands.export_responses import resolve_study


class Command(BaseCommand):
    help = "Write the codebook (every export variable, EN/FR labels, questions and codes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", required=True, help="csv or md.")
        parser.add_argument("--out", required=True, help="Output file path.")
        parser.add_argument("--include-personal", action="store_true",
                            help="Also document the personal-data columns.")
        parser.add_argument("--study", help="Document this study's questionnaire versions (every version its "
                            "participants answered). Default: the default questionnaire (FLOODLIGHT_INSTRUMENT).")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["fmt"].strip().lower()
        if fmt not in {"csv", "md"}:
            raise CommandError(f"Unknown codebook format {options['fmt']!r}: use csv or md.")
        try:
            out = check_writable(options["out"])
        except OSError as error:
            raise CommandError(f"Cannot write {options['out']}: {error}") from None
        study = resolve_study(options["study"]) if options.get("study") else None
        instruments = study_instruments(study) if study is not None else None
        rows = build_codebook(include_personal=options["include_personal"], instruments=instruments)
        text = (codebook_csv(rows) if fmt == "csv"
                else codebook_markdown(rows, instruments=instruments, title=study.slug if study else ""))
        try:
            atomic_write(out, lambda handle: handle.write(text.encode("utf-8")))
        except OSError as error:
            raise CommandError(f"Cannot write {out}: {error}") from None
        versions = f" ({', '.join(i.version for i in instruments)})" if instruments else ""
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(rows)} codebook rows{versions} to {out}."))
