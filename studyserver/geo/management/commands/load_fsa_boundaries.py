"""python manage.py load_fsa_boundaries SOURCE [--field fsa=COLUMN] [--field province_code=COLUMN] [--source-crs CRS]

SOURCE: a GeoJSON file (e.g. the reference fsa_2021.geojson), Statistics Canada's boundary file
(lfsa000b21a_e.zip, a shapefile in EPSG:3347 with CFSAUID/PRUID), any shapefile (.shp, folder,
.zip), or an http(s) URL of one of these. Idempotent; invalid geometries are repaired and counted.
Then the FSA placements of every representation order with boundaries are recomputed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from studyserver.commands import field_map as parse_field_map
from studyserver.geo.loaders import FSA_FIELD_ALIASES, DistrictSourceError
from studyserver.geo.store import load_fsa_boundaries


class Command(BaseCommand):
    help = "Load FSA polygons (GeoJSON, shapefile, zip or URL) and recompute the FSA placements by area."

    def add_arguments(self, parser):
        parser.add_argument("source", help="GeoJSON, .shp / folder / .zip shapefile, or an http(s) URL")
        parser.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN",
                            help=f"Source column for {' or '.join(FSA_FIELD_ALIASES)} when its name is unusual.")
        parser.add_argument("--source-crs", default=None, help="CRS of the source when it has none (e.g. EPSG:3347).")
        parser.add_argument("--skip-placements", action="store_true", help="Only store the polygons.")

    def handle(self, *args, **options):
        field_map = parse_field_map(options["field"], FSA_FIELD_ALIASES)
        verbosity = options["verbosity"]

        def progress(message: str) -> None:
            if verbosity >= 1:
                self.stdout.write(f"  {message}")

        try:
            summary = load_fsa_boundaries(options["source"], field_map=field_map, source_crs=options["source_crs"],
                                          rebuild=not options["skip_placements"], progress=progress)
        except (DistrictSourceError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in summary.lines():
            self.stdout.write(line)
