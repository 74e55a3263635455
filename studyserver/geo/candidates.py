"""FSA → district candidates, computed once when districts or centroids are loaded (no Django here).

An FSA is an area, but we only know one (approximate) centroid per FSA. So for each FSA we estimate
a *plausible radius* around the centroid — how far the FSA may extend — and only decide a
district when every point within that radius belongs to the district holding the centroid
(the distance from the centroid to every other district of the province exceeds the radius).
Otherwise the districts the plausible disc touches are offered, scored by the share of the
disc's land they cover, and the participant picks.

The plausible radius comes from how densely FSAs are packed around the centroid (the same
postal letter's province): an FSA's equivalent-disc radius is about d_k / sqrt(k + 1) where d_k is
the distance to its k-th nearest FSA centroid; we take a generous multiple of it, never less than
the distance to the nearest neighbouring centroid, plus a margin for centroid error. Rural FSAs
(second character 0) surround the urban ones, so their neighbours are the other rural FSAs and
their radius is at least the one implied by the province's area shared among its rural FSAs.

All geometry is done in Statistics Canada Lambert (EPSG:3347, metres).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from .postal import is_rural_fsa

# Tuning, in kilometres unless said otherwise. Conservative on purpose: asking costs one click,
# a wrong district silently corrupts a personalized treatment.
NEIGHBOURS = 4  # k for the density estimate
EXTENT_FACTOR = 2.0  # plausible radius = EXTENT_FACTOR × equivalent-disc radius …
NEAREST_FACTOR = 1.0  # … or NEAREST_FACTOR × the distance to the nearest other centroid, if larger …
MIN_URBAN_RADIUS_KM = 1.5  # … but never smaller than this (dense downtown FSAs, small districts) …
CENTROID_MARGIN_KM = 1.0  # … plus this for the centroid's own error.
RURAL_AREA_FACTOR = 1.5  # rural radius ≥ this × sqrt(rural area of province / (π × rural FSAs))
SNAP_KM = 5.0  # a centroid in water snaps to a district at most this far
MIN_SHARE = 0.02  # a district covering less of the plausible disc is not offered …
MAX_CANDIDATES = 8  # … and at most this many are ("none of these" then lists the province)
SAMPLES_PER_DISC = 256
# Canada's extent; a centroid outside it (e.g. H0H, Santa Claus, at the North Pole) is unplaceable.
CANADA_BOUNDS = (-141.5, 41.5, -52.0, 84.0)


@dataclass(frozen=True)
class DistrictShape:
    fed_code: str
    province_code: str
    geometry: shapely.Geometry  # EPSG:4326


@dataclass(frozen=True)
class FsaPoint:
    fsa: str
    province_code: str
    lat: float | None
    lon: float | None
    spread_km: float = 0.0  # farthest listed place of the FSA from the centroid


@dataclass(frozen=True)
class ScoredDistrict:
    fed_code: str
    score: float  # share of the plausible disc's land in this district (0–1)
    distance_km: float  # from the centroid to the district (0 when inside)


@dataclass(frozen=True)
class Placement:
    fsa: str
    province_code: str
    lat: float | None
    lon: float | None
    method: str  # contained | sole_district | snapped | ambiguous | province | unplaceable | skipped
    decided_fed_code: str | None
    snapped: bool
    placeable: bool
    extent_km: float | None
    nearest_other_km: float | None
    candidates: list[ScoredDistrict] = field(default_factory=list)


_TO_LAMBERT = Transformer.from_crs("EPSG:4326", "EPSG:3347", always_xy=True)


def to_lambert(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(_TO_LAMBERT.transform(xy[:, 0], xy[:, 1])))


def lambert_xy(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    x, y = _TO_LAMBERT.transform(lon, lat)
    return np.column_stack([x, y])


def has_usable_centroid(point: FsaPoint) -> bool:
    if point.lat is None or point.lon is None or math.isnan(point.lat) or math.isnan(point.lon):
        return False
    west, south, east, north = CANADA_BOUNDS
    return west <= point.lon <= east and south <= point.lat <= north


def disc_pattern(count: int = SAMPLES_PER_DISC) -> np.ndarray:
    """Evenly spread unit-disc points (sunflower pattern): deterministic, no clustering."""
    index = np.arange(count) + 0.5
    radius = np.sqrt(index / count)
    angle = index * math.pi * (3 - math.sqrt(5))
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def plausible_radii_km(points: Sequence[FsaPoint], xy: np.ndarray, province_area_km2: dict[str, float]) -> np.ndarray:
    """The plausible radius of each FSA around its centroid (see the module docstring)."""
    radii = np.full(len(points), np.nan)
    provinces = np.array([p.province_code for p in points])
    rural = np.array([is_rural_fsa(p.fsa) for p in points])
    for province in np.unique(provinces):
        for want_rural in (False, True):
            # Urban FSAs measure their density against every FSA of the province (rural ones
            # included: a town's FSA next to a rural one is still small); rural FSAs only
            # against the other rural ones (urban enclaves would make them look small).
            members = np.flatnonzero((provinces == province) & (rural == want_rural))
            if members.size == 0:
                continue
            pool = np.flatnonzero((provinces == province) & (rural if want_rural else True))
            if pool.size < 2:
                equivalent = np.full(members.size, np.nan)
                nearest = np.full(members.size, np.nan)
            else:
                k = min(NEIGHBOURS, pool.size - 1)
                distances, _ = cKDTree(xy[pool]).query(xy[members], k=k + 1)
                distances = distances / 1000.0  # column 0 is the point itself
                nearest = distances[:, 1]
                equivalent = distances[:, k] / math.sqrt(k + 1)
            radius = np.fmax(EXTENT_FACTOR * equivalent, NEAREST_FACTOR * nearest)
            radius = np.fmax(radius, MIN_URBAN_RADIUS_KM)
            if want_rural:
                area = province_area_km2.get(province, 0.0)
                radius = np.fmax(radius, RURAL_AREA_FACTOR * math.sqrt(area / (math.pi * members.size)))
            radii[members] = np.nan_to_num(radius, nan=MIN_URBAN_RADIUS_KM)
    spread = np.array([p.spread_km for p in points], float)
    return np.fmax(radii, spread) + CENTROID_MARGIN_KM


def compute_placements(
    districts: Sequence[DistrictShape],
    points: Sequence[FsaPoint],
    progress: Callable[[str], None] = lambda _m: None,
    placed_otherwise: frozenset[str] | set[str] = frozenset(),
) -> list[Placement]:
    """One Placement per FSA. With no district geometry at all, every FSA picks within its province.

    FSAs in ``placed_otherwise`` (placed from their polygon) get their centroid and plausible radius
    only (method ``skipped``): sampling their disc against every district is the slow part.
    """
    if not districts:
        return [_province_only(p) for p in points]
    shapes = [to_lambert(d.geometry) for d in districts]
    tree = shapely.STRtree(shapes)
    district_province = np.array([d.province_code for d in districts])
    province_area = {
        province: float(sum(shapes[i].area for i in np.flatnonzero(district_province == province)) / 1e6)
        for province in np.unique(district_province)
    }
    usable = [p for p in points if has_usable_centroid(p)]
    xy = lambert_xy(np.array([p.lon for p in usable], float), np.array([p.lat for p in usable], float))
    radii = plausible_radii_km(usable, xy, province_area)
    pattern = disc_pattern()
    by_fsa: dict[str, Placement] = {}
    for index, point in enumerate(usable):
        if point.fsa in placed_otherwise:
            by_fsa[point.fsa] = Placement(point.fsa, point.province_code, point.lat, point.lon, "skipped", None,
                                          False, True, round(float(radii[index]), 3), None)
            continue
        allowed = np.flatnonzero(district_province == point.province_code)
        by_fsa[point.fsa] = _place_one(point, xy[index], float(radii[index]), allowed, shapes, tree, pattern, districts)
        if (index + 1) % 250 == 0 or index + 1 == len(usable):
            progress(f"placed {index + 1}/{len(usable)} FSAs")
    return [by_fsa.get(p.fsa) or _unplaceable(p) for p in points]


def _place_one(
    point: FsaPoint,
    xy: np.ndarray,
    radius_km: float,
    allowed: np.ndarray,
    shapes: Sequence[shapely.Geometry],
    tree: shapely.STRtree,
    pattern: np.ndarray,
    districts: Sequence[DistrictShape],
) -> Placement:
    common = {
        "fsa": point.fsa, "province_code": point.province_code, "lat": point.lat, "lon": point.lon,
        "extent_km": round(radius_km, 3),
    }
    if allowed.size == 0:  # the province has no district loaded: pick within the (empty) province list
        return Placement(**common, method="province", decided_fed_code=None, snapped=False, placeable=True,
                         nearest_other_km=None)
    if allowed.size == 1:  # Yukon, Northwest Territories, Nunavut: one district, nothing to decide
        only = districts[allowed[0]].fed_code
        return Placement(**common, method="sole_district", decided_fed_code=only, snapped=False, placeable=True,
                         nearest_other_km=None, candidates=[ScoredDistrict(only, 1.0, 0.0)])
    centre = shapely.Point(xy)
    allowed_set = set(allowed.tolist())
    radius_m = radius_km * 1000.0
    # Districts of the province within reach: the disc plus the snapping distance.
    near = [i for i in tree.query(centre, predicate="dwithin", distance=radius_m + SNAP_KM * 1000.0).tolist()
            if i in allowed_set]
    distance_km = {i: shapes[i].distance(centre) / 1000.0 for i in near}
    containing = [i for i in near if distance_km[i] == 0.0]
    home: int | None = containing[0] if containing else None
    snapped = False
    if home is None and distance_km:
        closest = min(distance_km, key=distance_km.get)
        if distance_km[closest] <= SNAP_KM:
            home, snapped = closest, True
    # Share of the plausible disc's land in each district (sample points in the disc).
    samples = shapely.points(xy + pattern * radius_m)
    hits_point, hits_geom = tree.query(samples, predicate="intersects")
    counts: dict[int, int] = {}
    for geom_index in hits_geom[np.isin(hits_geom, allowed)].tolist():
        counts[geom_index] = counts.get(geom_index, 0) + 1
    land = sum(counts.values())
    scored = {i: counts[i] / land for i in counts} if land else {}
    others = [distance_km[i] for i in near if i != home]
    nearest_other = min(others) if others else None
    common["nearest_other_km"] = round(nearest_other, 3) if nearest_other is not None else None

    if home is not None:
        home_distance = distance_km[home]
        # Certain only when the whole plausible disc (around the centroid, or around the snapped
        # point for a centroid in water) stays inside the home district.
        if nearest_other is None or nearest_other > radius_km + home_distance:
            fed_code = districts[home].fed_code
            return Placement(**common, method="snapped" if snapped else "contained", decided_fed_code=fed_code,
                             snapped=snapped, placeable=True,
                             candidates=[ScoredDistrict(fed_code, 1.0, round(home_distance, 3))])
        scored.setdefault(home, 0.0)
    offered = sorted(
        (i for i, share in scored.items() if share >= MIN_SHARE or i == home),
        key=lambda i: (-scored[i], distance_km.get(i, math.inf), districts[i].fed_code),
    )[:MAX_CANDIDATES]
    if not offered:  # far offshore with nothing near: the participant picks within the province
        return Placement(**common, method="province", decided_fed_code=None, snapped=False, placeable=True)
    candidates = [
        ScoredDistrict(districts[i].fed_code, round(scored[i], 4),
                       round(distance_km.get(i, shapes[i].distance(centre) / 1000.0), 3))
        for i in offered
    ]
    return Placement(**common, method="ambiguous", decided_fed_code=None, snapped=snapped, placeable=True,
                     candidates=candidates)


def _province_only(point: FsaPoint) -> Placement:
    if not has_usable_centroid(point):
        return _unplaceable(point)
    return Placement(point.fsa, point.province_code, point.lat, point.lon, "province", None, False, True, None, None)


def _unplaceable(point: FsaPoint) -> Placement:
    return Placement(point.fsa, point.province_code, point.lat, point.lon, "unplaceable", None, False, False, None, None)
