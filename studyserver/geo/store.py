"""Writing districts, FSA centroids and the precomputed FSA placements to the database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .candidates import DistrictShape, FsaPoint, compute_placements, to_lambert
from .loaders import DistrictSource, read_district_source, read_fsa_centroids
from .models import District, FsaPlacement, PostalArea

REPRESENTATION_ORDERS = ("2013", "2023")
Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass
class LoadSummary:
    representation_order: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    missing_from_source: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fsa_count: int = 0
    placements: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        lines = [
            f"districts ({self.representation_order}): {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        if self.missing_from_source:
            lines.append(
                f"  warning: {len(self.missing_from_source)} district(s) in the database are not in the source "
                f"and were kept: {', '.join(self.missing_from_source[:10])}"
            )
        if self.placements:
            decided = sum(v for k, v in self.placements.items() if k in ("contained", "sole_district", "snapped"))
            lines.append(
                f"FSA placements: {self.fsa_count} FSAs, {decided} decided, "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.placements.items()))
            )
        lines.append(f"done in {self.seconds:.1f} s")
        return lines


def check_representation_order(representation_order: str) -> str:
    order = str(representation_order)
    if order not in REPRESENTATION_ORDERS:
        raise ValueError(f"unknown representation order {order!r} (expected one of {', '.join(REPRESENTATION_ORDERS)})")
    return order


def default_fsa_source() -> str:
    """Where the FSA centroids come from when no source is given: pgeocode's data directory.

    ``settings.PGEOCODE_DATA_DIR`` (from the ``PGEOCODE_DATA_DIR`` environment variable) names the
    folder holding pgeocode's cached ``CA.txt``; nothing is downloaded.
    """
    data_dir = getattr(settings, "PGEOCODE_DATA_DIR", "") or os.environ.get("PGEOCODE_DATA_DIR", "")
    if not data_dir:
        raise ImproperlyConfigured(
            "No FSA centroid source: set PGEOCODE_DATA_DIR to the folder holding pgeocode's CA.txt, "
            "or pass --fsa-source (a CA.txt, the GeoNames dump geonames_CA.txt / CA.zip, or a URL)."
        )
    return data_dir


def load_fsa_centroids(source: str | os.PathLike[str] | None = None, progress: Progress = _quiet) -> int:
    """Replace the FSA centroid table from ``source`` (default: pgeocode's data directory)."""
    records = read_fsa_centroids(source or default_fsa_source(), progress)
    with transaction.atomic():
        PostalArea.objects.all().delete()
        PostalArea.objects.bulk_create(
            PostalArea(fsa=r.fsa, place_name=r.place_name, province_code=r.province_code, lat=r.lat, lon=r.lon,
                       accuracy=r.accuracy, spread_km=r.spread_km)
            for r in records
        )
    return len(records)


def save_districts(source: DistrictSource, representation_order: str, origin: str, progress: Progress = _quiet) -> LoadSummary:
    """Create or update the districts of one representation order (idempotent)."""
    order = check_representation_order(representation_order)
    summary = LoadSummary(order, notes=list(source.notes))
    existing = {d.fed_code: d for d in District.objects.filter(representation_order=order)}
    now = timezone.now()
    with transaction.atomic():
        for index, record in enumerate(source.records, start=1):
            values: dict[str, object] = {
                "name_en": record.name_en, "name_fr": record.name_fr, "province_code": record.province_code,
            }
            if record.geometry is not None:
                minx, miny, maxx, maxy = record.geometry.bounds
                values.update(
                    geometry_wkb=shapely.to_wkb(record.geometry),
                    min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy,
                    area_km2=round(to_lambert(record.geometry).area / 1e6, 2),
                )
            elif record.area_km2 is not None:
                values["area_km2"] = record.area_km2
            # A names-only source keeps the boundaries a previous load stored.
            district = existing.get(record.fed_code)
            if district is None:
                District.objects.create(representation_order=order, fed_code=record.fed_code, source=origin[:300],
                                        loaded_at=now, **values)
                summary.created += 1
            else:
                changed = any(_differs(getattr(district, key), value) for key, value in values.items())
                if changed:
                    for key, value in values.items():
                        setattr(district, key, value)
                    district.source, district.loaded_at = origin[:300], now
                    district.save()
                    summary.updated += 1
                else:
                    summary.unchanged += 1
            if index % 50 == 0 or index == len(source.records):
                progress(f"saved {index}/{len(source.records)} districts")
    loaded = {r.fed_code for r in source.records}
    summary.missing_from_source = sorted(set(existing) - loaded)
    return summary


def _differs(current: object, new: object) -> bool:
    if isinstance(current, memoryview):
        current = bytes(current)
    if isinstance(current, float) and isinstance(new, float):
        return abs(current - new) > 1e-9
    return current != new


def rebuild_placements(representation_order: str, progress: Progress = _quiet) -> dict[str, int]:
    """Recompute every FSA's candidates for one representation order and store them (one row per FSA)."""
    order = check_representation_order(representation_order)
    districts = list(District.objects.filter(representation_order=order))
    if not districts:
        raise ValueError(f"no districts loaded for the {order} representation order")
    with_geometry = [d for d in districts if d.has_geometry]
    if with_geometry and len(with_geometry) != len(districts):
        progress(
            f"warning: {len(districts) - len(with_geometry)} of {len(districts)} districts have no boundary; "
            "candidates are computed from those that do"
        )
    shapes = [DistrictShape(d.fed_code, d.province_code, d.geometry()) for d in with_geometry]
    by_code = {d.fed_code: d for d in districts}
    areas = list(PostalArea.objects.all())
    if not areas:
        raise ValueError("no FSA centroids loaded (load them first: they come with load_districts)")
    points = [FsaPoint(a.fsa, a.province_code, a.lat, a.lon, a.spread_km) for a in areas]
    placements = compute_placements(shapes, points, progress)
    rows = []
    counts: dict[str, int] = {}
    for placement in placements:
        counts[placement.method] = counts.get(placement.method, 0) + 1
        rows.append(FsaPlacement(
            representation_order=order,
            fsa=placement.fsa,
            province_code=placement.province_code,
            lat=placement.lat,
            lon=placement.lon,
            extent_km=placement.extent_km,
            nearest_other_km=placement.nearest_other_km,
            method=placement.method,
            decided_fed_code=placement.decided_fed_code or "",
            snapped=placement.snapped,
            placeable=placement.placeable,
            candidates=[
                {
                    "fed_code": c.fed_code,
                    "name_en": by_code[c.fed_code].name_en,
                    "name_fr": by_code[c.fed_code].name_fr,
                    "score": c.score,
                    "district_id": by_code[c.fed_code].pk,
                    "distance_km": c.distance_km,
                }
                for c in placement.candidates
            ],
        ))
    with transaction.atomic():
        FsaPlacement.objects.filter(representation_order=order).delete()
        FsaPlacement.objects.bulk_create(rows, batch_size=500)
    return counts


def load_districts(
    source: str | os.PathLike[str],
    representation_order: str,
    *,
    fsa_source: str | os.PathLike[str] | None = None,
    field_map: dict[str, str] | None = None,
    source_crs: str | None = None,
    build_candidates: bool = True,
    progress: Progress = _quiet,
) -> LoadSummary:
    """Districts from ``source``, FSA centroids (when missing or ``fsa_source`` is given), then candidates."""
    started = time.monotonic()
    order = check_representation_order(representation_order)
    district_source = read_district_source(source, field_map=field_map, source_crs=source_crs, progress=progress)
    summary = save_districts(district_source, order, str(source), progress)
    if build_candidates:
        if fsa_source is not None or not PostalArea.objects.exists():
            summary.fsa_count = load_fsa_centroids(fsa_source, progress)
        else:
            summary.fsa_count = PostalArea.objects.count()
        summary.placements = rebuild_placements(order, progress)
    summary.seconds = time.monotonic() - started
    return summary


def reference_data_dir() -> Path:
    """The reference data folder (``FLOODLIGHT_REFERENCE_DATA``): tests, CI and the demo."""
    folder = getattr(settings, "FLOODLIGHT_REFERENCE_DATA", "") or os.environ.get("FLOODLIGHT_REFERENCE_DATA", "")
    if not folder or not Path(folder).is_dir():
        raise ImproperlyConfigured(
            f"FLOODLIGHT_REFERENCE_DATA must name the reference data folder (e.g. ../shared/data); got {folder!r}"
        )
    return Path(folder)
