"""python manage.py load_addresses SOURCE [--representation-order 2023|2013] [--all-uses]

SOURCE: Statistics Canada's National Address Register (a zip or folder of Address_*.csv, or one
such CSV), a researcher's own concordance CSV (postal_code,fed_code[,weight]), or an http(s) URL
of one of these. Every address is placed in a district of the loaded boundaries and counted per
full postal code; the order's previous postal-code placements are replaced in one transaction.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from studyserver.geo.addresses import AddressSourceError
from studyserver.geo.loaders import DistrictSourceError
from studyserver.geo.store import (
    DEFAULT_REPRESENTATION_ORDER,
    REPRESENTATION_ORDERS,
    load_addresses,
)


class Command(BaseCommand):
    help = "Place the National Address Register's addresses (or a concordance) in districts, per full postal code."

    def add_arguments(self, parser):
        parser.add_argument("source", help="NAR zip / folder / Address_*.csv, a postal_code,fed_code[,weight] CSV, or a URL")
        parser.add_argument("--representation-order", choices=REPRESENTATION_ORDERS, default=DEFAULT_REPRESENTATION_ORDER,
                            help=f"Default: {DEFAULT_REPRESENTATION_ORDER}, the order in force.")
        parser.add_argument("--all-uses", action="store_true",
                            help="Count non-residential addresses too (BU_USE 3; left out by default).")

    def handle(self, *args, **options):
        verbosity = options["verbosity"]

        def progress(message: str) -> None:
            if verbosity >= 1:
                self.stdout.write(f"  {message}")

        try:
            counts, decided = load_addresses(options["source"], options["representation_order"],
                                             residential_only=not options["all_uses"], progress=progress)
        except (AddressSourceError, DistrictSourceError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in counts.lines():
            self.stdout.write(line)
        total = len(counts.postal_codes)
        self.stdout.write(f"postal codes ({options['representation_order']}): {total:,} stored, {decided:,} decided "
                          f"({decided / max(total, 1):.1%}) at the default threshold, the rest ask the participant")
