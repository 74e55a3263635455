"""python manage.py audit_geocoding [--representation-order 2023|2013] [--districts SOURCE] [--samples N]

Measures the stored FSA placements against an independent computation (see geo/audit.py): each
FSA's area is its polygon when one is loaded, else its Voronoi cell among the province's FSA
centroids, clipped to land (raw, and capped at 2 × and 1 × the distance to the nearest other
centroid), sampled at random (seeded) and located by point-in-polygon. Prints the asked rate and
the silent-error rate (decided without asking AND wrong), by method and by province, and the
full postal codes loaded from addresses (decided / asked by province).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from studyserver.geo.areas import DEFAULT_AREA_THRESHOLD, decide_by_area, stored_shares
from studyserver.geo.audit import AuditPlacement, audit_placements
from studyserver.geo.candidates import DistrictShape
from studyserver.geo.loaders import DistrictSourceError, read_district_source
from studyserver.geo.models import District, FsaBoundary, FsaPlacement, PostalCodePlacement
from studyserver.geo.postal import provinces_for_fsa
from studyserver.geo.services import FSA_METHODS
from studyserver.geo.store import REPRESENTATION_ORDERS


class Command(BaseCommand):
    help = "Audit the FSA → district placements: silent-error rate and how often participants are asked."

    def add_arguments(self, parser):
        parser.add_argument("--representation-order", choices=REPRESENTATION_ORDERS, default="2023")
        parser.add_argument("--districts", default=None,
                            help="Boundaries to audit against (file or URL); default: those in the database.")
        parser.add_argument("--samples", type=int, default=200, help="Random locations per FSA.")
        parser.add_argument("--seed", type=int, default=20240401)
        parser.add_argument("--fsa-area-threshold", type=float, default=None,
                            help="Re-decide the FSAs placed by area at this share (e.g. 0.95) to see the trade-off; "
                            f"default: as stored ({DEFAULT_AREA_THRESHOLD}).")
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
        polygons = {b.fsa: b.geometry() for b in FsaBoundary.objects.all()}
        threshold = options["fsa_area_threshold"]
        placements = []
        for p in FsaPlacement.objects.filter(representation_order=order):
            decided, candidates = p.decided_fed_code or None, [c["fed_code"] for c in p.candidates]
            if threshold is not None and p.method in (FsaPlacement.Method.AREA, FsaPlacement.Method.AREA_SPLIT):
                decided, kept = decide_by_area(stored_shares(p.candidates), threshold)
                candidates = [share.fed_code for share in kept]
            placements.append(AuditPlacement(
                p.fsa, p.province_code, p.lat, p.lon, p.placeable, decided,
                tuple(candidates) if not decided else (), FSA_METHODS.get(p.method, "fsa_centroid"),
                polygons.get(p.fsa)))
        if not placements:
            raise CommandError(f"no FSA placements for {order}: run load_districts first")
        self.stdout.write(f"Geocoding audit, {order} representation order, {len(placements)} FSAs")
        for cap_text in options["caps"].split(","):
            cap = None if cap_text.strip().lower() in ("none", "") else float(cap_text)
            started = time.monotonic()
            report = audit_placements(districts, placements, samples_per_fsa=options["samples"],
                                      seed=options["seed"], cap_factor=cap)
            self.stdout.write("")
            self.stdout.write(f"== FSA area model: its polygon ({sum(p.polygon is not None for p in placements)} FSAs), "
                              "else its Voronoi cell, "
                              + (f"capped at {cap:g} x nearest-centroid distance" if cap else "uncapped")
                              + f" ({time.monotonic() - started:.1f} s)")
            for line in report.lines():
                self.stdout.write(line)
            if polygons and not any(p.polygon is None and p.method == "fsa_centroid" for p in placements):
                break  # the caps only change Voronoi cells, and no FSA uses one
        self._postal_codes(order)

    def _postal_codes(self, order: str) -> None:
        rows = PostalCodePlacement.objects.filter(representation_order=order).values_list(
            "postal_code", "decided_fed_code", "source")
        by_province: dict[str, list[int]] = {}
        sources: set[str] = set()
        for postal_code, decided, source in rows.iterator(chunk_size=20_000):
            province = "/".join(provinces_for_fsa(postal_code[:3])) or "?"
            counts = by_province.setdefault(province, [0, 0])
            counts[0 if decided else 1] += 1
            sources.add(source)
        self.stdout.write("")
        if not by_province:
            self.stdout.write("== full postal codes (method address): none loaded (load_addresses)")
            return
        total = [sum(c[0] for c in by_province.values()), sum(c[1] for c in by_province.values())]
        self.stdout.write(f"== full postal codes (method address), from {', '.join(sorted(sources))}")
        self.stdout.write(f"  {'province':<8} {'codes':>9} {'decided':>8} {'asked':>7}")
        for province, (decided, asked) in sorted(by_province.items()) + [("all", total)]:
            codes = decided + asked
            self.stdout.write(f"  {province:<8} {codes:>9,} {decided / codes:>8.1%} {asked / codes:>7.1%}")
