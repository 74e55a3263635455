"""python manage.py load_representatives SOURCE --representation-order 2013|2023
[--field NAME=COLUMN ...] [--allow-partial] [--dry-run]

SOURCE: the House of Commons' CSV of current members (a path or an http(s) URL, e.g.
https://www.ourcommons.ca/Members/en/search/csv). Idempotent; every unmatched row and every
vacant seat is listed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.commands import field_map as parse_field_map
from studyserver.geo.store import REPRESENTATION_ORDERS
from studyserver.letters.roster import HOC_COLUMNS, RosterError, load_roster, read_roster


class Command(BaseCommand):
    help = ("Load the House of Commons' list of current members (CSV) onto the districts of a "
            "representation order; lists unmatched rows and vacant seats.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="CSV file or http(s) URL of the current members")
        parser.add_argument("--representation-order", required=True, choices=REPRESENTATION_ORDERS)
        parser.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN",
                            help=f"Source column for one of our fields ({', '.join(HOC_COLUMNS)}).")
        parser.add_argument("--allow-partial", action="store_true",
                            help="The file lists only some seats: leave seats it does not list as they are.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; store nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        field_map = parse_field_map(options["field"], HOC_COLUMNS)
        progress = (lambda message: self.stdout.write(f"  {message}")) if options["verbosity"] >= 1 else None
        source = options["source"]
        self.stdout.write(f"Loading members from {source} …")
        try:
            roster = read_roster(source, field_map, progress)
            report = load_roster(roster, options["representation_order"], source=source,
                                 allow_partial=options["allow_partial"], dry_run=options["dry_run"],
                                 progress=progress)
        except RosterError as error:
            raise CommandError(f"{source}: {error}") from None
        sections = [
            ("New members", report.new), ("Replaced (by-election or change)", report.replaced),
            ("Updated", report.updated), ("No longer listed (seat vacated)", report.vacated),
            ("Rows matching no district (not loaded)", report.unmatched),
            ("Conflicts (not loaded)", report.conflicts), ("Rows skipped or adjusted", report.problems),
            ("Vacant seats (letters go to the riding, unnamed)", report.vacant),
        ]
        for title, lines in sections:
            if lines:
                self.stdout.write(f"{title}: {len(lines)}")
                for line in lines:
                    self.stdout.write(f"  - {line}")
        prefix = "DRY RUN, nothing stored: " if report.dry_run else ""
        summary = (f"{prefix}{report.rows} current members read ({report.former_rows} former skipped); "
                   f"{len(report.new)} new, {len(report.replaced)} replaced, {len(report.updated)} updated, "
                   f"{report.unchanged} unchanged; {len(report.vacant)} of {report.districts} seats vacant, "
                   f"{len(report.unmatched)} rows unmatched.")
        style = self.style.WARNING if (report.unmatched or report.conflicts) else self.style.SUCCESS
        self.stdout.write(style(summary))
