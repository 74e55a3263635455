"""python manage.py load_districts SOURCE [--representation-order 2023|2013]

SOURCE: a GeoJSON file, a shapefile (.shp, a folder or a .zip holding one, any CRS with a .prj;
the official Elections Canada files are in EPSG:3347), a names-only CSV (fed_code, name_en,
name_fr, province_code), or an http(s) URL of one of these (downloaded only then). Idempotent:
districts are updated in place (so loading fed_2023.geojson into a database that has the 2023
names only adds their boundaries), and every FSA's candidates are recomputed and stored;
participants already placed keep the district they were given.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from studyserver.commands import field_map as parse_field_map
from studyserver.geo.loaders import FIELD_ALIASES, DistrictSourceError
from studyserver.geo.store import REPRESENTATION_ORDERS, load_districts


class Command(BaseCommand):
    help = "Load federal electoral districts (GeoJSON, shapefile, names-only CSV or URL) and compute FSA candidates."

    def add_arguments(self, parser):
        parser.add_argument("source", help="GeoJSON, .shp / folder / .zip shapefile, names-only .csv, or an http(s) URL")
        parser.add_argument("--representation-order", choices=REPRESENTATION_ORDERS, default=None,
                            help="Default: the order the file declares (rep_order), else 2023, the order in force. "
                            "An order the file contradicts is refused.")
        parser.add_argument(
            "--fsa-source",
            default=None,
            help="FSA centroids: pgeocode's data folder or CA.txt, the raw GeoNames dump (geonames_CA.txt, CA.zip) "
            "or a URL. Default: the centroids already loaded, else PGEOCODE_DATA_DIR.",
        )
        parser.add_argument(
            "--field",
            action="append",
            default=[],
            metavar="NAME=COLUMN",
            help=f"Source column for one of our fields ({', '.join(FIELD_ALIASES)}) when its name is unusual.",
        )
        parser.add_argument("--source-crs", default=None, help="CRS of the source when it has none (e.g. EPSG:3347).")
        parser.add_argument("--skip-candidates", action="store_true", help="Only load the districts.")

    def handle(self, *args, **options):
        field_map = parse_field_map(options["field"], FIELD_ALIASES)
        verbosity = options["verbosity"]

        def progress(message: str) -> None:
            if verbosity >= 1:
                self.stdout.write(f"  {message}")

        try:
            summary = load_districts(
                options["source"],
                options["representation_order"],
                fsa_source=options["fsa_source"],
                field_map=field_map,
                source_crs=options["source_crs"],
                build_candidates=not options["skip_candidates"],
                progress=progress,
            )
        except (DistrictSourceError, ImproperlyConfigured, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in summary.lines():
            self.stdout.write(line)
