"""Help for a participant picking their riding: nearby places per candidate and a small SVG map.

Most people do not know their riding's name. Next to each candidate district we show the
neighbourhoods or municipalities near them that lie in it (the GeoNames place names of the nearest
FSAs placed in that district) and how much of their postal area it holds; above the list, a
server-rendered SVG map (no JavaScript) of the candidates' outlines around their postal area,
numbered like the list, with a text alternative. The list works without the map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
import shapely
from django.core.cache import cache

from studyserver.core.geometry import great_circle_km

from .models import District, FsaBoundary, FsaPlacement, PostalArea

MAX_PLACES = 3  # nearby place names shown per candidate
NEAR_KM = 40.0  # farther FSAs are not "near you"
MAP_WIDTH, MAP_HEIGHT = 320, 240
# Pale fills (dark text stays readable on them) and darker outlines, one pair per list number.
PALETTE = [("#cfe3f7", "#1f4e79"), ("#fde2c4", "#8a4b08"), ("#d7f0d2", "#276221"), ("#f3d1e8", "#7a1f5c"),
           ("#e6e0f8", "#4b3a8c"), ("#fff3b0", "#6b5d00"), ("#d9f2f2", "#1d5c5c"), ("#f5d5d5", "#8b1c1c")]
CACHE_SECONDS = 600


@dataclass(frozen=True)
class CandidateHelp:
    fed_code: str
    number: int  # 1-based, as on the map
    name: str
    share: float | None  # share of the participant's postal area in this district, when known
    places: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MapShape:
    number: int
    name: str
    geometry: shapely.Geometry  # EPSG:4326


@dataclass(frozen=True)
class PickerHelp:
    fsa: str
    candidates: list[CandidateHelp]
    shapes: list[MapShape]
    outline: shapely.Geometry | None  # the FSA's polygon, when loaded
    centre: tuple[float, float] | None  # (lon, lat) of its centroid
    extent_km: float

    def by_code(self) -> dict[str, CandidateHelp]:
        return {c.fed_code: c for c in self.candidates}

    def map_svg(self, *, title: str, description: str) -> str | None:
        """The SVG map, or None when no candidate has a boundary or the postal area has no location."""
        if not self.shapes or (self.outline is None and self.centre is None):
            return None
        return render_map(self.shapes, self.outline, self.centre, self.extent_km, title=title, description=description)


def picker_help(fsa: str, fed_codes: Sequence[str], representation_order: str, language: str) -> PickerHelp:
    """Places and map data for the candidate districts of ``fsa`` (cached: pages get reloaded)."""
    key = f"geo:picker:{representation_order}:{fsa}:{','.join(fed_codes)}:{language}"
    found = cache.get(key)
    if found is None:
        found = _picker_help(fsa, list(fed_codes), str(representation_order), language)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _picker_help(fsa: str, fed_codes: list[str], order: str, language: str) -> PickerHelp:
    placement = FsaPlacement.objects.filter(representation_order=order, fsa=fsa).first()
    shares: dict[str, float] = {}
    if placement is not None and placement.method in (FsaPlacement.Method.AREA, FsaPlacement.Method.AREA_SPLIT):
        shares = {c["fed_code"]: c["score"] for c in placement.candidates}
    places = nearby_places(placement, fed_codes, order) if placement is not None else {}
    districts = {d.fed_code: d for d in District.objects.filter(representation_order=order, fed_code__in=fed_codes)}
    numbered = [(number, districts[code]) for number, code in enumerate(fed_codes, start=1) if code in districts]
    boundary = FsaBoundary.objects.filter(fsa=fsa).first()
    return PickerHelp(
        fsa=fsa,
        candidates=[CandidateHelp(d.fed_code, number, d.name(language), shares.get(d.fed_code),
                                  places.get(d.fed_code, [])) for number, d in numbered],
        shapes=[MapShape(number, d.name(language), d.geometry()) for number, d in numbered if d.has_geometry],
        outline=boundary.geometry() if boundary is not None else None,
        centre=(placement.lon, placement.lat) if placement is not None and placement.lat is not None else None,
        extent_km=(placement.extent_km or 3.0) if placement is not None else 3.0,
    )


def nearby_places(placement: FsaPlacement, fed_codes: Sequence[str], order: str) -> dict[str, list[str]]:
    """For each candidate, the names of the nearest other FSAs lying mostly in it."""
    if placement.lat is None or placement.lon is None:
        return {}
    wanted = set(fed_codes)
    rows = FsaPlacement.objects.filter(representation_order=order, province_code=placement.province_code,
                                       placeable=True).exclude(fsa=placement.fsa).values_list(
        "fsa", "lat", "lon", "decided_fed_code", "candidates")
    located: list[tuple[float, str, str]] = []
    for fsa, lat, lon, decided, candidates in rows:
        if lat is None or lon is None:
            continue
        # Candidates are listed most people first: the one holding most of the area may not be first.
        largest = max(candidates, key=lambda c: c["score"]) if candidates else None
        home = decided or (largest["fed_code"] if largest and largest["score"] >= 0.5 else "")
        if home in wanted:
            located.append((great_circle_km(placement.lat, placement.lon, lat, lon), fsa, home))
    located.sort()
    names = dict(PostalArea.objects.filter(fsa__in=[fsa for _d, fsa, _h in located[:200]]).values_list(
        "fsa", "place_name"))
    result: dict[str, list[str]] = {code: [] for code in fed_codes}
    for distance, fsa, home in located:
        if distance > NEAR_KM:
            break
        name = _short_place(names.get(fsa, ""))
        if name and name not in result[home] and len(result[home]) < MAX_PLACES:
            result[home].append(name)
    return result


def _short_place(name: str) -> str:
    text = name.replace(" / ", ", ").strip()
    return text if len(text) <= 60 else text[:59].rstrip(", ") + "…"


# --- the map ----------------------------------------------------------------------------------


def render_map(shapes: Sequence[MapShape], outline: shapely.Geometry | None, centre: tuple[float, float] | None,
               extent_km: float, *, title: str, description: str) -> str:
    """An SVG of the candidate districts around the postal area (outline dashed, or its centre marked)."""
    window = _window(outline, centre, extent_km)
    west, south, east, north = window
    scale_x = math.cos(math.radians((south + north) / 2))
    scale = MAP_WIDTH / ((east - west) * scale_x)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - west) * scale_x * scale, (north - xy[:, 1]) * scale])

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="district-map" viewBox="0 0 {MAP_WIDTH} {MAP_HEIGHT}" '
             'role="img" aria-labelledby="district-map-title district-map-desc">',
             f'<title id="district-map-title">{escape(title)}</title>',
             f'<desc id="district-map-desc">{escape(description)}</desc>',
             f'<rect width="{MAP_WIDTH}" height="{MAP_HEIGHT}" fill="#f4f4f1"/>']
    labels: list[str] = []
    for shape in shapes:
        clipped = shapely.clip_by_rect(shape.geometry, *window)
        if clipped.is_empty:
            continue
        drawn = shapely.simplify(shapely.transform(clipped, project), 0.5)
        fill, stroke = PALETTE[(shape.number - 1) % len(PALETTE)]
        parts.append(f'<path d="{_path(drawn)}" fill="{fill}" stroke="{stroke}" stroke-width="1.5" '
                     'fill-rule="evenodd"/>')
        largest = max(getattr(drawn, "geoms", [drawn]), key=lambda g: g.area)
        point = largest.point_on_surface() if not largest.is_empty else None
        if point is not None:
            name = shape.name if len(shape.name) <= 26 else shape.name[:25] + "…"
            half = max(12.0, 2.9 * len(name))  # ≈ half the label's width at 10 px: keep it inside the map
            x, y = min(max(point.x, half), MAP_WIDTH - half), min(max(point.y, 14), MAP_HEIGHT - 26)
            labels.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="#fff" stroke="{stroke}" stroke-width="2"/>'
                          f'<text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle" font-size="13" '
                          f'font-weight="bold" fill="#111">{shape.number}</text>'
                          f'<text x="{x:.1f}" y="{y + 22:.1f}" text-anchor="middle" font-size="10" fill="#111" '
                          f'stroke="#fff" stroke-width="3" paint-order="stroke">{escape(name)}</text>')
    if outline is not None:
        drawn = shapely.transform(shapely.clip_by_rect(outline, *window), project)
        parts.append(f'<path d="{_path(drawn)}" fill="none" stroke="#111" stroke-width="2" stroke-dasharray="6 4"/>')
    elif centre is not None:
        x, y = project(np.array([centre]))[0]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#111" stroke="#fff" stroke-width="2"/>')
    parts += labels
    parts.append("</svg>")
    return "".join(parts)


def _window(outline: shapely.Geometry | None, centre: tuple[float, float] | None,
            extent_km: float) -> tuple[float, float, float, float]:
    """A lon/lat box around the postal area with the map's aspect ratio, padded by a quarter."""
    if outline is not None:
        west, south, east, north = outline.bounds
    else:
        lon, lat = centre
        half_lat = extent_km / 111.2
        half_lon = half_lat / max(math.cos(math.radians(lat)), 0.1)
        west, south, east, north = lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat
    mid_lat = (south + north) / 2
    scale_x = max(math.cos(math.radians(mid_lat)), 0.1)
    width, height = (east - west) * scale_x, north - south
    width, height = max(width, 0.01) * 1.5, max(height, 0.01) * 1.5  # padding, and at least ~1 km
    if width / height < MAP_WIDTH / MAP_HEIGHT:
        width = height * MAP_WIDTH / MAP_HEIGHT
    else:
        height = width * MAP_HEIGHT / MAP_WIDTH
    centre_lon, centre_lat = (west + east) / 2, mid_lat
    return (centre_lon - width / scale_x / 2, centre_lat - height / 2,
            centre_lon + width / scale_x / 2, centre_lat + height / 2)


def _path(geometry: shapely.Geometry) -> str:
    commands: list[str] = []
    for polygon in shapely.get_parts(geometry):
        rings = [polygon.exterior, *polygon.interiors] if polygon.geom_type == "Polygon" else [polygon]
        for ring in rings:
            coords = shapely.get_coordinates(ring)
            if len(coords) < 2:
                continue
            commands.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in coords) + "Z")
    return "".join(commands)
