"""python manage.py load_representatives SOURCE --representation-order 2013|2023
[--field NAME=COLUMN ...] [--allow-partial] [--dry-run]

SOURCE: the House of Commons' CSV of current members (a path or an http(s) URL, e.g.
https://www.ourcommons.ca/Members/en/search/csv). Idempotent; every unmatched row and every
vacant seat is counted (the first ones listed; ``--verbosity 2`` lists them all: a partial file
leaves hundreds).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.commands import field_map as parse_field_map
from studyserver.geo.store import REPRESENTATION_ORDERS
from studyserver.letters.roster import HOC_COLUMNS, RosterError, load_roster, read_roster

# Vacant seats listed one per line before the rest is only counted: a partial load (one province,
# a by-election) leaves hundreds, which would bury the rows that need a look (unmatched, conflicts).
VACANT_LISTED = 10


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
                shown = lines
                if lines is report.vacant and options["verbosity"] < 2:
                    shown = lines[:VACANT_LISTED]
                for line in shown:
                    self.stdout.write(f"  - {line}")
                if len(shown) < len(lines):
                    self.stdout.write(f"  … and {len(lines) - len(shown)} more (--verbosity 2 lists them all)")
        prefix = "DRY RUN, nothing stored: " if report.dry_run else ""
        summary = (f"{prefix}{report.rows} current members read ({report.former_rows} former skipped); "
                   f"{len(report.new)} new, {len(report.replaced)} replaced, {len(report.updated)} updated, "
                   f"{report.unchanged} unchanged; {len(report.vacant)} of {report.districts} seats vacant, "
                   f"{len(report.unmatched)} rows unmatched.")
        style = self.style.WARNING if (report.unmatched or report.conflicts) else self.style.SUCCESS
        self.stdout.write(style(summary))
