"""An independent check of the stored FSA placements: how often would a participant be placed
silently in the wrong district, and how often asked?

Independent of ``candidates.py`` and ``areas.py`` on purpose: it re-reads the district polygons
(from the database WKB or any source file), works in a different metric CRS (EPSG:3978, Canada
Atlas Lambert) and models each FSA's area differently. An FSA with a polygon is that polygon,
sampled at random instead of overlaid (areas.py intersects polygons in an equal-area CRS); an
FSA without one is its **Voronoi cell** among the FSA centroids of its province (rural FSAs among
the rural ones only: they tile what the towns leave), clipped to the province's land — instead
of candidates.py's plausible disc. Points drawn uniformly at random (seeded) in that
cell are located by point-in-polygon; the share landing in a district other than the decided one
is the FSA's silent-error share.

Figures (all FSA-weighted; the reference data has no population per FSA):
- asked rate: placeable FSAs whose participant is asked (candidates or province list);
- silent-error rate: mean over placeable FSAs of (decided ? wrong share : 0) — the chance that a
  participant at a random location of a random FSA is silently given a wrong district;
- decided FSAs with any / >5 % wrong share;
- candidate recall: for asked FSAs with candidates, the share of the cell covered by the offered
  candidates (the rest must use "none of these" → province list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer

from .candidates import DistrictShape  # the record only: the computation stays independent

AUDIT_CRS = "EPSG:3978"


@dataclass(frozen=True)
class AuditPlacement:
    fsa: str
    province_code: str
    lat: float | None
    lon: float | None
    placeable: bool
    decided_fed_code: str | None
    candidate_fed_codes: tuple[str, ...]
    method: str = "fsa_centroid"  # as reported by locate: fsa_area | fsa_centroid | sole_district
    polygon: shapely.Geometry | None = None  # the FSA's polygon (EPSG:4326) when one is loaded


@dataclass
class FsaVerdict:
    fsa: str
    province_code: str
    method: str
    candidate_count: int
    decided_fed_code: str | None
    wrong_share: float  # decided: share of the cell in another district; asked: 0
    candidate_recall: float | None  # asked with candidates: share of the cell in an offered district
    district_shares: dict[str, float]


@dataclass
class AuditReport:
    placeable: int
    decided: int
    asked: int
    asked_with_candidates: int
    asked_province_list: int
    silent_error_rate: float
    decided_with_any_error: int
    decided_with_error_over_5pct: int
    mean_candidate_recall: float
    samples_per_fsa: int
    cap_factor: float | None = None
    worst: list[FsaVerdict] = field(default_factory=list)
    verdicts: list[FsaVerdict] = field(default_factory=list)

    @property
    def asked_rate(self) -> float:
        return self.asked / self.placeable if self.placeable else 0.0

    def lines(self) -> list[str]:
        lines = [
            f"placeable FSAs:                 {self.placeable}",
            f"decided without asking:         {self.decided} ({self.decided / max(self.placeable, 1):.1%})",
            f"asked (participant picks):      {self.asked} ({self.asked_rate:.1%})"
            f"  [short list: {self.asked_with_candidates}, province list: {self.asked_province_list}]",
            f"silent-error rate:              {self.silent_error_rate:.4%} "
            "(decided AND wrong, over random locations in each FSA's polygon or Voronoi cell)",
            f"decided FSAs with any error:    {self.decided_with_any_error}"
            f"  (with > 5% of their cell wrong: {self.decided_with_error_over_5pct})",
            f"candidate recall when asked:    {self.mean_candidate_recall:.1%} "
            "(share of the cell covered by the offered districts)",
            f"samples per FSA:                {self.samples_per_fsa}; cells capped at "
            + (f"{self.cap_factor:g} x nearest-centroid distance" if self.cap_factor else "no cap (raw Voronoi)"),
        ]
        lines += breakdown_lines(self.verdicts)
        for verdict in self.worst:
            lines.append(
                f"  worst: {verdict.fsa} decided {verdict.decided_fed_code}, {verdict.wrong_share:.1%} of its "
                f"cell elsewhere: {verdict.district_shares}"
            )
        return lines


def breakdown_lines(verdicts: Sequence[FsaVerdict]) -> list[str]:
    """Decided / asked rates, silent errors and candidates, by method and by province."""
    lines: list[str] = []
    for title, key in (("method", lambda v: v.method), ("province", lambda v: v.province_code)):
        groups: dict[str, list[FsaVerdict]] = {}
        for verdict in verdicts:
            groups.setdefault(key(verdict), []).append(verdict)
        lines.append(f"by {title}: {'':<10} FSAs  decided   asked  silent-err  recall  candidates")
        for name, group in sorted(groups.items()):
            decided = [v for v in group if v.decided_fed_code]
            asked = [v for v in group if not v.decided_fed_code]
            recalls = [v.candidate_recall for v in asked if v.candidate_recall is not None]
            counts = [v.candidate_count for v in asked if v.candidate_count]
            lines.append(
                f"  {name:<18} {len(group):>5} {len(decided) / len(group):>8.1%} {len(asked) / len(group):>7.1%}"
                f" {sum(v.wrong_share for v in decided) / len(group):>10.3%}"
                f" {(sum(recalls) / len(recalls)) if recalls else 1.0:>7.1%}"
                f" {(sum(counts) / len(counts)) if counts else 0.0:>11.2f}"
            )
    return lines


def _projector():
    transformer = Transformer.from_crs("EPSG:4326", AUDIT_CRS, always_xy=True)

    def project(geometry: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))

    return project, transformer


def voronoi_cells(points_xy: np.ndarray, land: shapely.Geometry, cap_factor: float | None = None) -> list[shapely.Geometry]:
    """Voronoi cell of each point, clipped to ``land``, in the order of the points.

    With ``cap_factor``, each cell is also clipped to a disc of cap_factor × the distance to the
    nearest other site: a cell at the edge of a town otherwise stretches half-way to the next
    rural centroid, far beyond any urban FSA.
    """
    if len(points_xy) == 1:
        return [land]
    caps = None
    if cap_factor is not None:
        from scipy.spatial import cKDTree

        nearest, _ = cKDTree(points_xy).query(points_xy, k=2)
        caps = shapely.buffer(shapely.points(points_xy), cap_factor * nearest[:, 1], quad_segs=16)
    cloud = shapely.multipoints(points_xy)
    regions = shapely.voronoi_polygons(cloud, extend_to=land.envelope.buffer(1e5))
    cells: list[shapely.Geometry | None] = [None] * len(points_xy)
    tree = shapely.STRtree(shapely.points(points_xy))
    for region in shapely.get_parts(regions):
        inside = tree.query(region, predicate="contains")
        for index in inside.tolist():
            cells[index] = region
    clipped = [shapely.intersection(cell, land) if cell is not None else shapely.Point() for cell in cells]
    if caps is not None:
        clipped = [shapely.intersection(cell, cap) for cell, cap in zip(clipped, caps, strict=True)]
    return clipped


def _sample(cell: shapely.Geometry, count: int, rng: np.random.Generator) -> np.ndarray:
    if cell.is_empty:
        return np.empty((0, 2))
    west, south, east, north = cell.bounds
    shapely.prepare(cell)
    found: list[np.ndarray] = []
    total = 0
    for _attempt in range(50):
        batch = np.column_stack([rng.uniform(west, east, count * 4), rng.uniform(south, north, count * 4)])
        keep = batch[shapely.contains_xy(cell, batch[:, 0], batch[:, 1])]
        found.append(keep)
        total += len(keep)
        if total >= count:
            break
    return np.concatenate(found)[:count] if found else np.empty((0, 2))


def audit_placements(
    districts: Sequence[DistrictShape],
    placements: Sequence[AuditPlacement],
    *,
    samples_per_fsa: int = 200,
    seed: int = 20240401,
    worst: int = 5,
    cap_factor: float | None = None,
) -> AuditReport:
    project, transformer = _projector()
    rng = np.random.default_rng(seed)
    shapes = [project(d.geometry) for d in districts]
    codes = [d.fed_code for d in districts]
    tree = shapely.STRtree(shapes)
    placeable = [p for p in placements if p.placeable and p.lat is not None and p.lon is not None]
    verdicts: list[FsaVerdict] = []
    for province in sorted({p.province_code for p in placeable}):
        members = [i for i, d in enumerate(districts) if d.province_code == province]
        if not members:
            continue
        land = shapely.unary_union([shapes[i] for i in members])
        in_province = [p for p in placeable if p.province_code == province]
        xy = np.column_stack(transformer.transform([p.lon for p in in_province], [p.lat for p in in_province]))
        xy += rng.normal(0, 0.01, xy.shape)  # separates coincident centroids (Voronoi needs distinct sites)
        rural = np.array([p.fsa[1] == "0" for p in in_province])
        cells: list[shapely.Geometry | None] = [None] * len(in_province)
        for group in (np.flatnonzero(~rural), np.flatnonzero(rural)):
            # Urban cells among all the province's centroids; rural cells among rural ones only.
            sites = np.arange(len(in_province)) if not rural[group].any() else group
            if group.size == 0:
                continue
            group_cells = voronoi_cells(xy[sites], land, cap_factor)
            position = {site: n for n, site in enumerate(sites.tolist())}
            for index in group.tolist():
                cells[index] = group_cells[position[index]]
        member_set = set(members)
        for placement, cell in zip(in_province, cells, strict=True):
            if placement.polygon is not None:
                cell = project(placement.polygon)
            points = _sample(cell, samples_per_fsa, rng)
            shares: dict[str, float] = {}
            if len(points):
                hit_point, hit_geom = tree.query(shapely.points(points), predicate="intersects")
                mask = np.isin(hit_geom, list(member_set))
                located = hit_geom[mask]
                for geom_index, count in zip(*np.unique(located, return_counts=True), strict=True):
                    shares[codes[geom_index]] = round(float(count) / max(len(np.unique(hit_point[mask])), 1), 4)
            common = (placement.fsa, placement.province_code, placement.method, len(placement.candidate_fed_codes))
            if placement.decided_fed_code:
                wrong = 1.0 - shares.get(placement.decided_fed_code, 0.0) if shares else 0.0
                verdicts.append(FsaVerdict(*common, placement.decided_fed_code, max(wrong, 0.0), None, shares))
            else:
                recall = sum(shares.get(code, 0.0) for code in placement.candidate_fed_codes) if (
                    placement.candidate_fed_codes and shares) else None
                verdicts.append(FsaVerdict(*common, None, 0.0, recall, shares))
    decided = [v for v in verdicts if v.decided_fed_code]
    asked = [v for v in verdicts if not v.decided_fed_code]
    recalls = [v.candidate_recall for v in asked if v.candidate_recall is not None]
    by_fsa = {p.fsa: p for p in placeable}
    return AuditReport(
        placeable=len(verdicts),
        decided=len(decided),
        asked=len(asked),
        asked_with_candidates=sum(1 for v in asked if by_fsa[v.fsa].candidate_fed_codes),
        asked_province_list=sum(1 for v in asked if not by_fsa[v.fsa].candidate_fed_codes),
        silent_error_rate=float(sum(v.wrong_share for v in decided) / len(verdicts)) if verdicts else 0.0,
        decided_with_any_error=sum(1 for v in decided if v.wrong_share > 0),
        decided_with_error_over_5pct=sum(1 for v in decided if v.wrong_share > 0.05),
        mean_candidate_recall=float(np.mean(recalls)) if recalls else 1.0,
        samples_per_fsa=samples_per_fsa,
        cap_factor=cap_factor,
        worst=sorted((v for v in decided if v.wrong_share > 0), key=lambda v: -v.wrong_share)[:worst],
        verdicts=verdicts,
    )
