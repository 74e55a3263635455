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

A placement is decided when the largest share reaches the threshold (a study setting, 0.99 by
default); otherwise the districts holding at least ``MIN_AREA_SHARE`` are offered, largest first.
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
MIN_AREA_SHARE = 0.02  # a district holding less of the FSA is not offered …
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


def offered(shares: Sequence[tuple[str, float]], threshold: float,
            min_share: float = MIN_AREA_SHARE, limit: int = MAX_AREA_CANDIDATES) -> tuple[str | None, list[tuple[str, float]]]:
    """(decided fed_code or None, the districts to offer), from shares sorted largest first.

    Used at load time with the default threshold and at lookup time with a study's own.
    """
    if not shares:
        return None, []
    top_code, top_share = shares[0]
    if top_share >= threshold:
        return top_code, [shares[0]]
    kept = [item for item in shares if item[1] >= min_share] or [shares[0]]
    return None, kept[:limit]
