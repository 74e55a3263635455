"""Create the demo study end to end: districts, FSA candidates, allocation, DEMO treatment images, an admin.

Idempotent: running it again only adds what is missing. Reads the reference data from
FLOODLIGHT_REFERENCE_DATA (the Makefile points it at ../shared/data).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from studyserver.assignment.services import ensure_scheme
from studyserver.geo.reference import load_reference_districts
from studyserver.instrument.definition import InstrumentError, content_hash, parse_instrument_text
from studyserver.instrument.models import InstrumentVersion
from studyserver.instrument.versions import store_version
from studyserver.studies.models import Study
from studyserver.treatments.demo import seed_demo_stimuli

DEMO_SLUG = "demo"
# The order in force since the April 2025 election (343 districts, boundaries in fed_2023.geojson).
DEMO_REPRESENTATION_ORDER = "2023"
DEMO_INSTRUMENT = Path(__file__).resolve().parents[3] / "instrument" / "definitions" / "floodlight-v1.yaml"


class Command(BaseCommand):
    help = "Seed the demo study (districts, candidates, allocation scheme, DEMO images, admin/admin)."

    def add_arguments(self, parser):
        parser.add_argument("--limit-districts", type=int, default=None, help="Seed images for only N districts (tests).")
        parser.add_argument("--min-exposure-seconds", type=int, default=10)
        parser.add_argument("--no-admin", action="store_true", help="Do not create the admin/admin demo account.")

    def handle(self, *args, **options):
        data_dir = settings.FLOODLIGHT_REFERENCE_DATA
        if not data_dir or not os.path.isdir(data_dir):
            raise CommandError(
                "FLOODLIGHT_REFERENCE_DATA must point at the reference data folder (e.g. ../shared/data); "
                f"got {data_dir!r}. `make demo` sets it for you."
            )
        started = time.monotonic()
        self.stdout.write(f"[1/4] districts with boundaries, FSA polygons and placements ({DEMO_REPRESENTATION_ORDER} "
                          "representation order)…")
        load_reference_districts(DEMO_REPRESENTATION_ORDER, stdout=self.stdout)

        self.stdout.write("[2/4] demo study, its questionnaire version and allocation scheme…")
        try:
            version, stored = store_version(_demo_source(), filename=DEMO_INSTRUMENT.name,
                                            note="The repository's sample questionnaire (seed_demo).")
        except InstrumentError as error:
            # Typically: the repository's sample questionnaire changed since this database stored it.
            raise CommandError(
                f"{DEMO_INSTRUMENT.name}: {'; '.join(error.problems)}.\nFor the demo, start from a fresh database "
                f"(delete {settings.DATABASES['default']['NAME']} and run `make demo` again); for a real study, "
                "give the revised file a new `version:` and load it with `manage.py load_instrument`."
            ) from None
        self.stdout.write(f"      questionnaire {version} {'stored' if stored else 'already stored'}")
        study, created = Study.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "questionnaire": version,
                "title": "Floodlight demo study",
                "is_open": True,
                "demo": True,
                "representation_order": DEMO_REPRESENTATION_ORDER,
                "min_exposure_seconds": options["min_exposure_seconds"],
            },
        )
        ensure_scheme(study)
        self.stdout.write(f"      study '{study.slug}' {'created' if created else 'already there'}")
        if not created and study.demo and study.questionnaire_id != version.content_hash:
            # The sample was revised since this database was seeded: the demo's newcomers get the
            # revision; its participants keep the version they started with.
            try:
                study.move_to_version(version)
                self.stdout.write(f"      demo study moved to {version}")
            except ValidationError as error:
                self.stdout.write(self.style.WARNING(f"      demo study kept on {study.questionnaire}: "
                                                     f"{' '.join(error.messages)}"))
        if study.representation_order != DEMO_REPRESENTATION_ORDER:
            # A database seeded before the demo moved to 2023: the study keeps its order (its
            # participants were placed in it); the 2023 districts are loaded beside it.
            self.stdout.write(self.style.WARNING(
                f"      note: this database's demo study is on the {study.representation_order} representation "
                f"order (seeded before the demo moved to {DEMO_REPRESENTATION_ORDER}); its images are kept up to "
                f"date on {study.representation_order}. For the {DEMO_REPRESENTATION_ORDER} demo, start from a fresh "
                f"database (delete {settings.DATABASES['default']['NAME']})."))
            load_reference_districts(study.representation_order, stdout=self.stdout)

        self.stdout.write("[3/4] DEMO treatment images (simulated-world photos, flooded by the reference generator)…")
        seed_demo_stimuli(study.representation_order, progress=self.stdout, limit_districts=options["limit_districts"])

        self.stdout.write("[4/4] researcher account…")
        if not options["no_admin"]:
            user_model = get_user_model()
            if not user_model.objects.filter(username="admin").exists():
                user_model.objects.create_superuser("admin", "admin@example.org", "admin")
                self.stdout.write("      created admin / admin (demo only: change it before any real use)")
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready in {time.monotonic() - started:.0f} s. Participant entry: /s/{study.slug}/?pid=YOUR-ID"
        ))


def _demo_source() -> str:
    """The sample questionnaire's text; when this database stored another text under the same
    `version:` (the repository's sample was revised since), the same text labelled with its hash,
    so that `make demo` on an existing database stores it as a revision instead of stopping."""
    import re

    source = DEMO_INSTRUMENT.read_text(encoding="utf-8")
    digest = content_hash(source)
    label = parse_instrument_text(source, DEMO_INSTRUMENT.name).version
    clash = InstrumentVersion.objects.filter(label=label).exclude(content_hash=digest).exists()
    if not clash:
        return source
    return re.sub(r"^version:.*$", f"version: {label}-{digest[:8]}", source, count=1, flags=re.MULTILINE)
