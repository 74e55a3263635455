"""Loading the bundled reference districts once, for tests, CI and the demo.

``load_reference_districts("2023")`` loads ``fed_2023.geojson`` (the 343 districts of the order in
force, with boundaries and adults per district) and ``load_reference_districts("2013")``
``fed_2013.geojson`` (338 districts) from the folder named by ``FLOODLIGHT_REFERENCE_DATA``, plus the FSA centroids (pgeocode's ``CA.txt`` from
``PGEOCODE_DATA_DIR``, else the folder's ``geonames_CA.txt``) and the FSA polygons
(``fsa_2021.geojson``), then computes the FSA placements (by area where a polygon is known).
It does nothing when that order is already loaded with its placements, so a session-scoped
fixture (or the demo seeding) can call it freely.

For pytest, in a conftest.py::

    @pytest.fixture(scope="session")
    def reference_districts_2013(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock():
            load_reference_districts("2013")
"""

from __future__ import annotations

import os
from typing import IO

from django.conf import settings

from .models import District, FsaBoundary, FsaPlacement, PostalArea
from .store import (
    DEFAULT_REPRESENTATION_ORDER,
    LoadSummary,
    load_districts,
    load_fsa_boundaries,
    load_fsa_centroids,
    reference_data_dir,
)

REFERENCE_FILES = {"2013": "fed_2013.geojson", "2023": "fed_2023.geojson"}
REFERENCE_FSA_BOUNDARIES = "fsa_2021.geojson"


def reference_fsa_source() -> str:
    pgeocode_dir = getattr(settings, "PGEOCODE_DATA_DIR", "") or os.environ.get("PGEOCODE_DATA_DIR", "")
    if pgeocode_dir and os.path.exists(os.path.join(pgeocode_dir, "CA.txt")):
        return pgeocode_dir
    return str(reference_data_dir() / "geonames_CA.txt")


def load_reference_districts(representation_order: str = DEFAULT_REPRESENTATION_ORDER, stdout: IO[str] | None = None,
                             force: bool = False) -> LoadSummary | None:
    """Load the reference districts and FSA candidates of one order; None when already loaded."""
    order = str(representation_order)
    if order not in REFERENCE_FILES:
        raise ValueError(f"no reference data for representation order {order!r}")
    already = (
        # With boundaries: a database seeded before they shipped has 2023 names only (upgraded here).
        District.objects.filter(representation_order=order, geometry_wkb__isnull=False).exists()
        and FsaPlacement.objects.filter(representation_order=order).exists()
        and FsaBoundary.objects.exists()
    )
    if already and not force:
        if stdout is not None:
            stdout.write(f"      districts and FSA candidates ({order}) already loaded\n")
        return None

    def progress(message: str) -> None:
        if stdout is not None:
            stdout.write(f"      {message}\n")

    if not PostalArea.objects.exists():
        load_fsa_centroids(reference_fsa_source(), progress)
    if not FsaBoundary.objects.exists():
        # Before the districts, so that their placements are computed once, with the polygons.
        boundaries = load_fsa_boundaries(reference_data_dir() / REFERENCE_FSA_BOUNDARIES, rebuild=False,
                                         progress=progress)
        progress(boundaries.lines()[0])
    summary = load_districts(reference_data_dir() / REFERENCE_FILES[order], order, progress=progress)
    for line in summary.lines():
        progress(line)
    return summary
