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

from .addresses import DEFAULT_POSTAL_CODE_THRESHOLD, AddressCounts, read_addresses
from .areas import (
    DEFAULT_AREA_THRESHOLD,
    AreaShares,
    FsaShape,
    area_km2,
    compute_area_shares,
    decide_by_area,
    estimate_people,
)
from .candidates import DistrictShape, FsaPoint, Placement, compute_placements, to_lambert
from .loaders import (
    DistrictSource,
    local_copy,
    read_district_source,
    read_fsa_boundaries,
    read_fsa_centroids,
)
from .models import District, FsaBoundary, FsaPlacement, PostalArea, PostalCodePlacement

REPRESENTATION_ORDERS = ("2013", "2023")
# The order of the April 2025 election and of the sitting House: what loaders and studies default to.
DEFAULT_REPRESENTATION_ORDER = "2023"
DECIDED_METHODS = ("area", "contained", "sole_district", "snapped")
CENTROID_SOURCE = "GeoNames FSA centroid"
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
            decided = sum(v for k, v in self.placements.items() if k in DECIDED_METHODS)
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
            if record.population is not None:
                values["population"] = record.population
            if record.geometry is not None:
                minx, miny, maxx, maxy = record.geometry.bounds
                values.update(
                    geometry_wkb=shapely.to_wkb(record.geometry),
                    min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy,
                    area_km2=round(to_lambert(record.geometry).area / 1e6, 2),
                )
            if record.area_km2 is not None:
                # The official (land) area, when the source has it: outlines run out into open water.
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
    """Recompute every FSA's candidates for one representation order and store them (one row per FSA).

    FSAs with a polygon (``FsaBoundary``) are placed by area shares; the others (the territories,
    FSAs created since the boundary file) by the conservative centroid method of candidates.py.
    """
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
    boundaries = list(FsaBoundary.objects.all()) if shapes else []
    if not areas and not boundaries:
        raise ValueError("no FSA centroids loaded (load them first: they come with load_districts)")
    points = [FsaPoint(a.fsa, a.province_code, a.lat, a.lon, a.spread_km) for a in areas]
    shares = compute_area_shares(shapes, [FsaShape(b.fsa, b.province_code, b.geometry()) for b in boundaries], progress)
    placements = compute_placements(shapes, points, progress, placed_otherwise=set(shares))
    boundary_source = {b.fsa: b.source for b in boundaries}
    density = {d.fed_code: d.density_km2 for d in districts}
    if shares and any(value is None for value in density.values()):
        progress("note: some districts have no population, so their FSAs' candidates are ordered by area alone")

    def candidate(fed_code: str, score: float, distance_km: float, **extra: float) -> dict:
        district = by_code[fed_code]
        return {"fed_code": fed_code, "name_en": district.name_en, "name_fr": district.name_fr, "score": score,
                **extra, "district_id": district.pk, "distance_km": distance_km}

    rows = []
    for placement in placements:
        if placement.fsa in shares:
            rows.append(_area_row(order, shares.pop(placement.fsa), placement, boundary_source, candidate, density))
            continue
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
            candidates=[candidate(c.fed_code, c.score, c.distance_km) for c in placement.candidates],
            source=CENTROID_SOURCE,
        ))
    # FSAs with a polygon that GeoNames does not list (created since its snapshot).
    rows += [_area_row(order, area, None, boundary_source, candidate, density) for area in shares.values()]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.method] = counts.get(row.method, 0) + 1
    with transaction.atomic():
        FsaPlacement.objects.filter(representation_order=order).delete()
        FsaPlacement.objects.bulk_create(rows, batch_size=500)
    return counts


def _area_row(order: str, area: AreaShares, centroid: Placement | None, sources: dict[str, str],
              candidate: Callable[..., dict], density: dict[str, float | None]) -> FsaPlacement:
    shares = estimate_people(area.shares, density)
    decided, _ = decide_by_area(shares, DEFAULT_AREA_THRESHOLD)
    # Every district above the offer floors is kept, so a study with a lower threshold decides at lookup.
    _, kept = decide_by_area(shares, threshold=2.0)
    usable = centroid is not None and centroid.placeable
    return FsaPlacement(
        representation_order=order,
        fsa=area.fsa,
        province_code=area.province_code,
        lat=centroid.lat if usable else area.lat,
        lon=centroid.lon if usable else area.lon,
        extent_km=centroid.extent_km if centroid else None,
        nearest_other_km=centroid.nearest_other_km if centroid else None,
        method=FsaPlacement.Method.AREA if decided else FsaPlacement.Method.AREA_SPLIT,
        decided_fed_code=decided or "",
        snapped=False,
        placeable=True,
        candidates=[candidate(s.fed_code, round(s.area, 6), 0.0, people=round(s.people, 6)) for s in kept],
        source=f"FSA polygon: {sources.get(area.fsa, '')}"[:300],
    )


@dataclass
class BoundaryLoadSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    missing_from_source: list[str] = field(default_factory=list)
    placements: dict[str, dict[str, int]] = field(default_factory=dict)  # per representation order
    seconds: float = 0.0

    def lines(self) -> list[str]:
        lines = [f"FSA polygons: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                 f"{self.repaired} invalid geometries repaired"]
        if self.missing_from_source:
            lines.append(f"  warning: {len(self.missing_from_source)} FSA polygon(s) in the database are not in the "
                         f"source and were kept: {', '.join(self.missing_from_source[:10])}")
        for order, counts in sorted(self.placements.items()):
            decided = sum(v for k, v in counts.items() if k in DECIDED_METHODS)
            lines.append(f"FSA placements ({order}): {sum(counts.values())} FSAs, {decided} decided, "
                         + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        lines.append(f"done in {self.seconds:.1f} s")
        return lines


def load_fsa_boundaries(
    source: str | os.PathLike[str],
    *,
    field_map: dict[str, str] | None = None,
    source_crs: str | None = None,
    rebuild: bool = True,
    progress: Progress = _quiet,
) -> BoundaryLoadSummary:
    """Store FSA polygons (idempotent), then recompute the placements of every loaded order."""
    started = time.monotonic()
    boundary_source = read_fsa_boundaries(source, field_map=field_map, source_crs=source_crs, progress=progress)
    for note in boundary_source.notes:
        progress(f"note: {note}")
    summary = BoundaryLoadSummary(repaired=boundary_source.repaired)
    existing = {b.fsa: b for b in FsaBoundary.objects.all()}
    now = timezone.now()
    origin = str(source)[:300]
    areas = area_km2([r.geometry for r in boundary_source.records])
    creates: list[FsaBoundary] = []
    updates: list[FsaBoundary] = []
    for record, km2 in zip(boundary_source.records, areas, strict=True):
        wkb = shapely.to_wkb(record.geometry)
        current = existing.get(record.fsa)
        if current is None:
            creates.append(FsaBoundary(fsa=record.fsa, province_code=record.province_code, geometry_wkb=wkb,
                                       area_km2=km2, source=origin, loaded_at=now))
        elif bytes(current.geometry_wkb) != wkb or current.province_code != record.province_code:
            current.geometry_wkb, current.province_code, current.area_km2 = wkb, record.province_code, km2
            current.source, current.loaded_at = origin, now
            updates.append(current)
        else:
            summary.unchanged += 1
    with transaction.atomic():
        FsaBoundary.objects.bulk_create(creates, batch_size=200)
        FsaBoundary.objects.bulk_update(updates, ["geometry_wkb", "province_code", "area_km2", "source", "loaded_at"],
                                        batch_size=200)
    summary.created, summary.updated = len(creates), len(updates)
    summary.missing_from_source = sorted(set(existing) - {r.fsa for r in boundary_source.records})
    progress(f"saved {len(boundary_source.records)} FSA polygons")
    if rebuild:
        orders = District.objects.exclude(geometry_wkb=None).values_list("representation_order", flat=True).distinct()
        for order in sorted(set(orders)):
            progress(f"recomputing the {order} placements")
            summary.placements[order] = rebuild_placements(order, progress)
    summary.seconds = time.monotonic() - started
    return summary


def source_representation_order(source: DistrictSource, representation_order: str | None, where: str) -> str:
    """The order to load ``source`` as: the one asked, checked against the one the source declares."""
    declared = sorted({record.rep_order for record in source.records if record.rep_order})
    if representation_order is None:
        if len(declared) > 1:
            raise ValueError(f"{where} mixes representation orders ({', '.join(declared)}): load one at a time")
        return check_representation_order(declared[0] if declared else DEFAULT_REPRESENTATION_ORDER)
    order = check_representation_order(representation_order)
    if declared and declared != [order]:
        raise ValueError(f"{where} holds districts of the {'/'.join(declared)} representation order, not {order}: "
                         f"pass --representation-order {'/'.join(declared)} (or a file of the {order} order)")
    return order


def load_districts(
    source: str | os.PathLike[str],
    representation_order: str | None = None,
    *,
    fsa_source: str | os.PathLike[str] | None = None,
    field_map: dict[str, str] | None = None,
    source_crs: str | None = None,
    build_candidates: bool = True,
    progress: Progress = _quiet,
) -> LoadSummary:
    """Districts from ``source``, FSA centroids (when missing or ``fsa_source`` is given), then candidates.

    ``representation_order`` None: the order the source declares (``rep_order``), else 2023. An order
    that contradicts the source's declaration is refused (2013 boundaries filed as 2023 would place
    participants in ridings that no longer exist).
    """
    started = time.monotonic()
    district_source = read_district_source(source, field_map=field_map, source_crs=source_crs, progress=progress)
    order = source_representation_order(district_source, representation_order, str(source))
    summary = save_districts(district_source, order, str(source), progress)
    if build_candidates:
        if fsa_source is not None or not PostalArea.objects.exists():
            load_fsa_centroids(fsa_source, progress)
        summary.placements = rebuild_placements(order, progress)
        summary.fsa_count = sum(summary.placements.values())  # FSAs with a polygon but no centroid too
    summary.seconds = time.monotonic() - started
    return summary


def load_addresses(
    source: str | os.PathLike[str],
    representation_order: str,
    *,
    residential_only: bool = True,
    progress: Progress = _quiet,
) -> tuple[AddressCounts, int]:
    """Place a register's addresses (or a concordance) and replace the order's postal-code placements.

    Returns the counts and the number of postal codes decided at the default threshold. The
    previous load stays in place until the new one is complete (one transaction).
    """
    order = check_representation_order(representation_order)
    districts = [d for d in District.objects.filter(representation_order=order) if d.has_geometry]
    by_code = {d.fed_code: d for d in District.objects.filter(representation_order=order)}
    if not by_code:
        raise ValueError(f"no districts loaded for the {order} representation order: run load_districts first")
    shapes = [DistrictShape(d.fed_code, d.province_code, d.geometry()) for d in districts]
    if not shapes:  # a concordance needs only the districts' codes
        shapes = [DistrictShape(d.fed_code, d.province_code, shapely.Point()) for d in by_code.values()]
    with local_copy(source, progress) as path:
        counts = read_addresses(path, shapes, residential_only=residential_only, progress=progress)
    origin = f"{counts.kind}: {source}"[:300]
    decided = 0

    def rows():
        nonlocal decided
        for postal_code, weights in counts.postal_codes.items():
            total = sum(w for _code, w in weights)
            top_code, top_weight = weights[0]
            chosen = top_code if top_weight / total >= DEFAULT_POSTAL_CODE_THRESHOLD else ""
            decided += bool(chosen)
            yield PostalCodePlacement(
                representation_order=order, postal_code=postal_code, addresses=max(1, round(total)),
                decided_fed_code=chosen, source=origin,
                candidates=[{"fed_code": code, "name_en": by_code[code].name_en, "name_fr": by_code[code].name_fr,
                             "score": round(w / total, 6), "district_id": by_code[code].pk} for code, w in weights],
            )

    progress(f"storing {len(counts.postal_codes):,} postal codes")
    with transaction.atomic():
        PostalCodePlacement.objects.filter(representation_order=order).delete()
        batch: list[PostalCodePlacement] = []
        for index, row in enumerate(rows(), start=1):
            batch.append(row)
            if len(batch) == 5000:
                PostalCodePlacement.objects.bulk_create(batch)
                batch = []
                if index % 100_000 == 0:
                    progress(f"stored {index:,}/{len(counts.postal_codes):,} postal codes")
        PostalCodePlacement.objects.bulk_create(batch)
    return counts, decided


def reference_data_dir() -> Path:
    """The reference data folder (``FLOODLIGHT_REFERENCE_DATA``): tests, CI and the demo."""
    folder = getattr(settings, "FLOODLIGHT_REFERENCE_DATA", "") or os.environ.get("FLOODLIGHT_REFERENCE_DATA", "")
    if not folder or not Path(folder).is_dir():
        raise ImproperlyConfigured(
            f"FLOODLIGHT_REFERENCE_DATA must name the reference data folder (e.g. ../shared/data); got {folder!r}"
        )
    return Path(folder)
