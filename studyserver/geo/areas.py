"""FSA polygon → district shares (no Django here).

An FSA's placement is the share of its area in each district of its province, measured in an
equal-area projection (Canada Albers, ESRI:102001: Statistics Canada's Lambert is conformal and
would weigh the north more than the south). Shares are normalized by the part of the FSA that
falls in some district of its province, so coarse outlines spilling over water or a provincial
border do not dilute them — but only when those districts cover at least ``MIN_COVERAGE`` of the
FSA: a district whose outline lacks parts (the shipped 2013 file keeps 581 km² of Manicouagan and
3 km² of Brandon–Souris) would otherwise hand a neighbour the whole FSA through a sliver. Such FSAs
keep the centroid method. One vectorized STRtree query finds the (FSA, district) pairs that
touch; one vectorized intersection measures them (~1 s for the 1,634 FSAs × 338 districts).

Area is not people: a downtown FSA can be a dense core plus a large, nearly empty remainder
(Winnipeg's R3C is 98 % Winnipeg West by area, but most of its people live in the 1.9 % that is
Winnipeg Centre). So each share also gets an *estimated people share*: area share × the district's
people per km² (its population over its area), normalized. It knows how dense each district is on
average, not where in the district, nor inside the FSA, its people live: a dense district's
empty park or a rural district's village is invisible to it.

A placement is decided when one district holds at least the threshold of the area (a study
setting, 0.99 by default) and no other district holds ``MIN_PEOPLE_SHARE`` (or 1 − the threshold,
if more) of the estimated people: a much denser district's sliver is never decided away. Otherwise the districts holding at least ``MIN_AREA_SHARE`` of
the area or ``MIN_PEOPLE_SHARE`` of the estimated people are offered, most people first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer

from .candidates import DistrictShape

EQUAL_AREA_CRS = "ESRI:102001"  # Canada Albers Equal Area Conic (NAD83)
DEFAULT_AREA_THRESHOLD = 0.99  # Study.fsa_area_threshold's default; trade-off measured in geo/README.md
MIN_AREA_SHARE = 0.005  # a district holding less of the FSA's area is not offered …
MIN_PEOPLE_SHARE = 0.02  # … unless it holds this much of its estimated people (which also blocks deciding) …
MAX_AREA_CANDIDATES = 8  # … and at most this many are ("none of these" lists the province)
MIN_COVERAGE = 0.9  # share of the FSA's polygon the province's districts must cover to trust the shares

_TO_EQUAL_AREA = Transformer.from_crs("EPSG:4326", EQUAL_AREA_CRS, always_xy=True)


@dataclass(frozen=True)
class FsaShape:
    fsa: str
    province_code: str
    geometry: shapely.Geometry  # EPSG:4326


@dataclass(frozen=True)
class AreaShares:
    fsa: str
    province_code: str
    shares: list[tuple[str, float]]  # (fed_code, share of the FSA's area), largest first, summing to 1
    lat: float  # a point surely inside the FSA (for maps and FSAs GeoNames does not know)
    lon: float
    coverage: float  # share of the FSA's polygon inside some district of its province


def to_equal_area(geometries: Sequence[shapely.Geometry]) -> np.ndarray:
    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(_TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1]))

    # Densified so that long edges along parallels stay parallels once projected.
    return np.array([shapely.transform(shapely.segmentize(g, 0.01), project) for g in geometries], dtype=object)


def area_km2(geometries: Sequence[shapely.Geometry]) -> list[float]:
    """Areas in km² (equal-area projection) of EPSG:4326 geometries."""
    return [round(float(a) / 1e6, 3) for a in shapely.area(to_equal_area(geometries))] if geometries else []


def compute_area_shares(
    districts: Sequence[DistrictShape],
    fsas: Sequence[FsaShape],
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, AreaShares]:
    """Each FSA's area shares among its province's districts.

    FSAs covered less than ``MIN_COVERAGE`` by those districts are left out (centroid method).
    """
    if not districts or not fsas:
        return {}
    district_shapes = to_equal_area([d.geometry for d in districts])
    fsa_shapes = to_equal_area([f.geometry for f in fsas])
    tree = shapely.STRtree(district_shapes)
    fsa_index, district_index = tree.query(fsa_shapes, predicate="intersects")
    district_province = np.array([d.province_code for d in districts])
    fsa_province = np.array([f.province_code for f in fsas])
    same = district_province[district_index] == fsa_province[fsa_index]
    fsa_index, district_index = fsa_index[same], district_index[same]
    progress(f"measuring {len(fsa_index)} FSA × district overlaps")
    areas = shapely.area(shapely.intersection(fsa_shapes[fsa_index], district_shapes[district_index]))
    inside = shapely.point_on_surface([f.geometry for f in fsas])
    result: dict[str, AreaShares] = {}
    fsa_area = shapely.area(fsa_shapes)
    order = np.argsort(fsa_index, kind="stable")
    fsa_index, district_index, areas = fsa_index[order], district_index[order], areas[order]
    bounds = np.flatnonzero(np.diff(fsa_index)) + 1
    for rows in np.split(np.arange(len(fsa_index)), bounds):
        if rows.size == 0:
            continue
        total = float(areas[rows].sum())
        coverage = total / float(fsa_area[fsa_index[rows[0]]])
        if total <= 0 or coverage < MIN_COVERAGE:
            continue
        fsa = fsas[int(fsa_index[rows[0]])]
        shares = sorted(
            ((districts[int(d)].fed_code, float(a) / total) for d, a in zip(district_index[rows], areas[rows], strict=True)
             if a > 0),
            key=lambda item: (-item[1], item[0]),
        )
        point = inside[int(fsa_index[rows[0]])]
        result[fsa.fsa] = AreaShares(fsa.fsa, fsa.province_code, shares, float(point.y), float(point.x),
                                     round(min(coverage, 1.0), 4))
    progress(f"{len(result)} of {len(fsas)} FSA polygons placed by area (the others are less than "
             f"{MIN_COVERAGE:.0%} covered by their province's districts: centroid method)")
    return result


@dataclass(frozen=True)
class Share:
    fed_code: str
    area: float  # share of the FSA's area (0–1)
    people: float  # estimated share of its people (0–1); the area share when densities are unknown


def estimate_people(shares: Sequence[tuple[str, float]], density: dict[str, float | None]) -> list[Share]:
    """Area shares with their estimated people shares, most people first (see the module docstring).

    Without a density for every district concerned, the area share stands for the people share.
    """
    known = [density.get(code) for code, _share in shares]
    weights = [share * d for (_code, share), d in zip(shares, known, strict=True)] if all(
        d is not None and d >= 0 for d in known) else []
    total = sum(weights)
    if total <= 0:
        weights, total = [share for _code, share in shares], sum(share for _code, share in shares) or 1.0
    result = [Share(code, share, weight / total) for (code, share), weight in zip(shares, weights, strict=True)]
    return sorted(result, key=lambda s: (-s.people, -s.area, s.fed_code))


def decide_by_area(shares: Sequence[Share], threshold: float, limit: int = MAX_AREA_CANDIDATES) -> tuple[
        str | None, list[Share]]:
    """(decided fed_code or None, the districts to offer, most people first), at a study's threshold."""
    if not shares:
        return None, []
    top = max(shares, key=lambda s: (s.area, s.people))
    # A study lenient on area (threshold 0.75) is as lenient on people; the strict default still asks
    # whenever another district is estimated to hold 2 % of the people.
    dense_sliver = any(s.people >= max(MIN_PEOPLE_SHARE, 1.0 - threshold) for s in shares if s is not top)
    if top.area >= threshold and not dense_sliver:
        return top.fed_code, [top]
    kept = [s for s in shares if s.area >= MIN_AREA_SHARE or s.people >= MIN_PEOPLE_SHARE] or [top]
    return None, sorted(kept, key=lambda s: (-s.people, -s.area, s.fed_code))[:limit]


def stored_shares(candidates: Sequence[dict]) -> list[Share]:
    """The Shares of an FsaPlacement's stored candidates (``score`` = area share; rows stored before
    people were estimated have no ``people``: their area share stands for it)."""
    return [Share(c["fed_code"], float(c["score"]), float(c.get("people", c["score"]))) for c in candidates]


def offered(shares: Sequence[tuple[str, float]], threshold: float,
            min_share: float = MIN_AREA_SHARE, limit: int = MAX_AREA_CANDIDATES) -> tuple[str | None, list[tuple[str, float]]]:
    """(decided fed_code or None, the districts to offer), from shares sorted largest first.

    Full postal codes' address shares (real counts of addresses, not areas) are decided this way.
    """
    if not shares:
        return None, []
    top_code, top_share = shares[0]
    if top_share >= threshold:
        return top_code, [shares[0]]
    kept = [item for item in shares if item[1] >= min_share] or [shares[0]]
    return None, kept[:limit]
