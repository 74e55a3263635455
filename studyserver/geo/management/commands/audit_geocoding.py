"""python manage.py audit_geocoding [--representation-order 2013] [--districts SOURCE] [--samples N]

Measures the stored FSA placements against an independent computation (see geo/audit.py): each
FSA's area modelled as its Voronoi cell among the province's FSA centroids, clipped to land (raw,
and capped at 2 × and 1 × the distance to the nearest other centroid), sampled at random (seeded)
and located by point-in-polygon. Prints the asked rate and the silent-error rate (decided without
asking AND wrong).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from studyserver.geo.audit import AuditPlacement, audit_placements
from studyserver.geo.candidates import DistrictShape
from studyserver.geo.loaders import DistrictSourceError, read_district_source
from studyserver.geo.models import District, FsaPlacement
from studyserver.geo.store import REPRESENTATION_ORDERS


class Command(BaseCommand):
    help = "Audit the FSA → district placements: silent-error rate and how often participants are asked."

    def add_arguments(self, parser):
        parser.add_argument("--representation-order", choices=REPRESENTATION_ORDERS, default="2013")
        parser.add_argument("--districts", default=None,
                            help="Boundaries to audit against (file or URL); default: those in the database.")
        parser.add_argument("--samples", type=int, default=200, help="Random locations per FSA.")
        parser.add_argument("--seed", type=int, default=20240401)
        parser.add_argument("--caps", default="none,2,1",
                            help="Comma-separated Voronoi caps (× nearest-centroid distance; 'none' = raw cell).")

    def handle(self, *args, **options):
        order = options["representation_order"]
        if options["districts"]:
            try:
                source = read_district_source(options["districts"])
            except DistrictSourceError as exc:
                raise CommandError(str(exc)) from exc
            districts = [DistrictShape(r.fed_code, r.province_code, r.geometry) for r in source.records
                         if r.geometry is not None]
        else:
            districts = [DistrictShape(d.fed_code, d.province_code, d.geometry())
                         for d in District.objects.filter(representation_order=order) if d.has_geometry]
        if not districts:
            raise CommandError(f"no district boundaries for the {order} representation order to audit against")
        placements = [
            AuditPlacement(p.fsa, p.province_code, p.lat, p.lon, p.placeable, p.decided_fed_code or None,
                           tuple(c["fed_code"] for c in p.candidates if not p.decided_fed_code))
            for p in FsaPlacement.objects.filter(representation_order=order)
        ]
        if not placements:
            raise CommandError(f"no FSA placements for {order}: run load_districts first")
        self.stdout.write(f"Geocoding audit, {order} representation order, {len(placements)} FSAs")
        for cap_text in options["caps"].split(","):
            cap = None if cap_text.strip().lower() in ("none", "") else float(cap_text)
            started = time.monotonic()
            report = audit_placements(districts, placements, samples_per_fsa=options["samples"],
                                      seed=options["seed"], cap_factor=cap)
            self.stdout.write("")
            self.stdout.write("== FSA area model: Voronoi cell, "
                              + (f"capped at {cap:g} x nearest-centroid distance" if cap else "uncapped")
                              + f" ({time.monotonic() - started:.1f} s)")
            for line in report.lines():
                self.stdout.write(line)
