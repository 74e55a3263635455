"""python manage.py signed_entry_links --study SLUG --base-url https://HOST --ids IDS.txt --out LINKS.csv"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studyserver.studies.models import Study


class Command(BaseCommand):
    help = ("Write the signed entry link of every panel id in a file (one id per line) as CSV "
            "(panel_id,url), for researchers who send the links themselves. sig is the hex HMAC-SHA256 of "
            "'<slug>:<panel id>' keyed with the study's entry secret (README: Signed entry links).")

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--base-url", required=True, help="Where the study is served, e.g. https://study.example.ca")
        parser.add_argument("--ids", required=True, help="Text file with one panel id per line ('-': standard input).")
        parser.add_argument("--out", default="-", help="CSV file to write ('-': standard output, the default).")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        base_url = options["base_url"].strip()
        if not base_url.startswith(("https://", "http://")):
            raise CommandError(f"--base-url must start with https:// (got {base_url!r}).")
        try:
            text = sys.stdin.read() if options["ids"] == "-" else Path(options["ids"]).read_text(encoding="utf-8-sig")
        except OSError as error:
            raise CommandError(f"Cannot read {options['ids']}: {error.strerror or error}.") from None
        panel_ids = [line.strip() for line in text.splitlines() if line.strip()]
        if not panel_ids:
            raise CommandError(f"{options['ids']} has no panel ids.")
        too_long = [pid for pid in panel_ids if len(pid) > 200]
        if too_long:
            raise CommandError(f"{len(too_long)} panel id(s) longer than 200 characters, e.g. {too_long[0][:40]!r}….")
        if not study.require_signed_entry:
            self.stderr.write(self.style.WARNING(
                f"Study {study.slug} does not require signed links yet: tick 'Require signed entry' before fielding."))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["panel_id", "url"])
        for number, panel_id in enumerate(panel_ids, start=1):
            writer.writerow([panel_id, study.entry_link(base_url, panel_id)])
            if number % 10_000 == 0:
                self.stderr.write(f"{number}/{len(panel_ids)} links")
        if options["out"] == "-":
            self.stdout.write(buffer.getvalue(), ending="")
        else:
            try:
                Path(options["out"]).write_text(buffer.getvalue(), encoding="utf-8")
            except OSError as error:
                raise CommandError(f"Cannot write {options['out']}: {error.strerror or error}.") from None
        self.stderr.write(self.style.SUCCESS(f"{len(panel_ids)} signed entry links for {study.slug}."))
