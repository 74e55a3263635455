"""python manage.py build_fsa_candidates [--representation-order 2023|2013] [--fsa-source SOURCE]

Recompute and store every FSA's candidate districts (load_districts does it too); with
--fsa-source, reload the FSA centroids first (pgeocode's folder or CA.txt, geonames_CA.txt, CA.zip, URL).
"""

from __future__ import annotations

import time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from studyserver.geo.loaders import DistrictSourceError
from studyserver.geo.store import (
    DEFAULT_REPRESENTATION_ORDER,
    REPRESENTATION_ORDERS,
    load_fsa_centroids,
    rebuild_placements,
)


class Command(BaseCommand):
    help = "Recompute the stored FSA → district candidates of a representation order."

    def add_arguments(self, parser):
        parser.add_argument("--representation-order", choices=REPRESENTATION_ORDERS, default=DEFAULT_REPRESENTATION_ORDER,
                            help=f"Default: {DEFAULT_REPRESENTATION_ORDER}, the order in force.")
        parser.add_argument("--fsa-source", default=None, help="Reload FSA centroids from this source first.")

    def handle(self, *args, **options):
        started = time.monotonic()
        progress = self.stdout.write if options["verbosity"] >= 1 else (lambda _m: None)
        try:
            if options["fsa_source"]:
                count = load_fsa_centroids(options["fsa_source"], progress)
                self.stdout.write(f"{count} FSA centroids loaded")
            counts = rebuild_placements(options["representation_order"], progress)
        except (DistrictSourceError, ImproperlyConfigured, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            "placements: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f" ({time.monotonic() - started:.1f} s)"
        )
