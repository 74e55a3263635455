"""python manage.py locate_postal_code CODE [CODE ...] [--file PATH] [--json] [--representation-order 2013|2023]

With --json: one JSON object per line, exactly
{"input", "normalized", "valid", "error", "fsa", "province_code", "lat", "lon",
 "candidates": [{"fed_code", "name_en", "name_fr", "score"}], "decided_fed_code"}
(decided_fed_code is null when the participant would be asked). Without it: a readable table.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from studyserver.geo.models import District
from studyserver.geo.services import locate
from studyserver.geo.store import REPRESENTATION_ORDERS


class Command(BaseCommand):
    help = "Locate postal codes in federal electoral districts (as the survey would)."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", metavar="CODE")
        parser.add_argument("--file", default=None, help="Read codes from this file, one per line ('-' for stdin).")
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")
        parser.add_argument(
            "--representation-order",
            choices=REPRESENTATION_ORDERS,
            default=None,
            help="Default: 2023 when its districts are loaded, else 2013.",
        )

    def handle(self, *args, **options):
        codes = list(options["codes"])
        if options["file"]:
            codes += self._read_file(options["file"])
        if not codes:
            raise CommandError("give at least one postal code, or --file")
        order = options["representation_order"] or self._default_order()
        locations = [locate(code, order) for code in codes]
        if options["json"]:
            for location in locations:
                self.stdout.write(json.dumps(location.to_json_dict(), ensure_ascii=False))
            return
        self.stdout.write(f"representation order {order}")
        header = f"{'input':<12} {'normalized':<10} {'prov':<4} {'decided':<8} candidates (score) / error"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for loc in locations:
            if loc.error:
                detail = f"error: {loc.error}"
            elif loc.candidates:
                detail = "; ".join(f"{c.fed_code} {c.name_en} ({c.score:.2f})" for c in loc.candidates)
            else:
                detail = "participant picks within the province"
            decided = "-" if loc.error else (loc.decided_fed_code or "ask") + ("*" if loc.snapped else "")
            self.stdout.write(
                f"{loc.input[:12]:<12} {loc.normalized or '-':<10} {loc.province_code or '-':<4} {decided:<8} {detail}"
            )
        if any(loc.snapped for loc in locations):
            self.stdout.write("* centroid in water, snapped to the nearest district")

    def _read_file(self, path: str) -> list[str]:
        import sys

        try:
            if path == "-":
                lines = sys.stdin.read().splitlines()
            else:
                with open(path, encoding="utf-8") as handle:
                    lines = handle.read().splitlines()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]

    @staticmethod
    def _default_order() -> str:
        return "2023" if District.objects.filter(representation_order="2023").exists() else "2013"
