"""Reading district boundaries and FSA centroids from files (or a URL the operator gives).

District sources: GeoJSON (EPSG:4326 by default, or the CRS named in its ``crs`` member), an
ESRI shapefile (``.shp``, a folder holding one, or a ``.zip``; CRS from the ``.prj``, e.g. the
official Elections Canada files in EPSG:3347) or a names-only CSV (``fed_2023.csv``). Every
geometry is reprojected to EPSG:4326 with pyproj, repaired with ``make_valid`` when broken (and
reported), and stored as WKB with its bounding box.

FSA centroids: the pgeocode cache (``CA.txt``, CSV with a header) or the raw GeoNames dump
(``CA.txt``/``geonames_CA.txt``, tab-separated, no header, or the ``CA.zip`` that holds it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.validation import explain_validity

from studyserver.core.geometry import great_circle_km

from .postal import PROVINCE_BY_SGC_CODE, PROVINCE_NAMES, PROVINCES_BY_FIRST_LETTER

WGS84 = CRS.from_epsg(4326)
# Statistics Canada Lambert (metres): the official boundary files' CRS and our metric CRS.
STATCAN_LAMBERT = CRS.from_epsg(3347)

# Column names seen in the files we know, per field, tried in order (case-insensitive).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "fed_code": ("fed_code", "FED_NUM", "FEDNUM", "FED_CODE", "FEDUID", "ED_NUM", "ED_CODE"),
    "name_en": ("name_en", "ED_NAMEE", "ENNAME", "FEDENAME", "ED_NAME_EN", "FED_NAME_E", "NAME_EN"),
    "name_fr": ("name_fr", "ED_NAMEF", "FRNAME", "FEDFNAME", "ED_NAME_FR", "FED_NAME_F", "NAME_FR"),
    "province_code": ("province_code", "PROV_CODE", "PROVCODE", "PROV", "PR_ABBR"),
    "area_km2": ("area_km2", "LANDAREA", "AREA_KM2"),
    # People in the district (adults 18+ in fed_2023.geojson, everyone in fed_2013.geojson): with the
    # area, a density that estimates where an FSA's people live (areas.estimate_people).
    "population": ("adults_2021", "population_2011", "population", "POP_2021", "POP_2016", "POP_2011", "POP"),
    "rep_order": ("rep_order", "REP_ORDER"),
}
REQUIRED_FIELDS = ("fed_code", "name_en")


class DistrictSourceError(ValueError):
    """A source file that cannot be loaded; the message says what to fix."""


@dataclass
class DistrictRecord:
    fed_code: str
    name_en: str
    name_fr: str
    province_code: str
    geometry: shapely.Geometry | None = None  # EPSG:4326
    area_km2: float | None = None
    population: int | None = None
    rep_order: str = ""  # the representation order the source says it holds, when it says


@dataclass
class DistrictSource:
    records: list[DistrictRecord]
    kind: str  # "geojson" | "shapefile" | "csv"
    crs: str | None = None
    notes: list[str] = field(default_factory=list)  # repairs and other things the operator should know


Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


# --- opening a source ------------------------------------------------------------------------


@contextmanager
def local_copy(source: str | os.PathLike[str], progress: Progress = _quiet) -> Iterator[Path]:
    """A local path for ``source``; an http(s) URL is downloaded to a temporary file first.

    Downloading happens only here, i.e. only when an operator passes a URL to a command.
    """
    text = str(source)
    if not text.startswith(("http://", "https://")):
        path = Path(text).expanduser()
        if not path.exists():
            raise DistrictSourceError(f"{path}: no such file or folder")
        yield path
        return
    suffix = "".join(Path(text.split("?", 1)[0]).suffixes[-2:]) or ".download"
    with tempfile.TemporaryDirectory(prefix="floodlight-geo-") as folder:
        target = Path(folder) / f"source{suffix}"
        progress(f"downloading {text} …")
        try:
            with urllib.request.urlopen(text, timeout=120) as response, open(target, "wb") as out:  # noqa: S310
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except OSError as exc:
            raise DistrictSourceError(f"could not download {text}: {exc}") from exc
        progress(f"downloaded {target.stat().st_size / 1e6:.1f} MB")
        yield target


def read_district_source(
    source: str | os.PathLike[str],
    *,
    field_map: dict[str, str] | None = None,
    source_crs: str | None = None,
    progress: Progress = _quiet,
) -> DistrictSource:
    """Read districts from a GeoJSON, shapefile (file, folder or zip) or names-only CSV."""
    with local_copy(source, progress) as path:
        name = path.name.lower()
        if path.is_dir() or name.endswith((".shp", ".zip", ".geojson", ".json")):
            return _read_district_features(path, field_map=field_map, source_crs=source_crs, progress=progress)
        if name.endswith((".csv", ".txt")):
            return read_names_csv(path, field_map=field_map, progress=progress)
        raise DistrictSourceError(
            f"{path}: unknown kind of file (expected .geojson/.json, .shp, a folder or .zip holding a "
            "shapefile, or a names-only .csv)"
        )


# --- attribute handling ------------------------------------------------------------------------


def _resolve_columns(
    available: Iterable[str],
    field_map: dict[str, str] | None,
    where: str,
    aliases: dict[str, tuple[str, ...]] = FIELD_ALIASES,
    required: tuple[str, ...] = REQUIRED_FIELDS,
) -> dict[str, str]:
    """Map our field names to the source's column names; a clear error if a required one is missing."""
    by_lower = {column.lower(): column for column in available}
    resolved: dict[str, str] = {}
    for our_name, names in aliases.items():
        wanted = (field_map or {}).get(our_name)
        if wanted:
            if wanted.lower() not in by_lower:
                raise DistrictSourceError(
                    f"{where}: the column {wanted!r} given for {our_name} is not there "
                    f"(columns: {', '.join(sorted(by_lower.values()))})"
                )
            resolved[our_name] = by_lower[wanted.lower()]
            continue
        for alias in names:
            if alias.lower() in by_lower:
                resolved[our_name] = by_lower[alias.lower()]
                break
    missing = [name for name in required if name not in resolved]
    if missing:
        raise DistrictSourceError(
            f"{where}: missing field {', '.join(missing)} (looked for "
            + "; ".join(f"{name}: {'/'.join(aliases[name])}" for name in missing)
            + f"; columns present: {', '.join(sorted(by_lower.values())) or 'none'}). "
            "Name the column with --field NAME=COLUMN."
        )
    return resolved


def _fed_code(value: object, where: str) -> str:
    text = str(value).strip() if value is not None else ""
    if text.endswith(".0"):  # numeric columns read as floats
        text = text[:-2]
    if not text.isdigit() or len(text) != 5:
        raise DistrictSourceError(f"{where}: fed_code {value!r} is not a 5-digit district number")
    if text[:2] not in PROVINCE_BY_SGC_CODE:
        raise DistrictSourceError(f"{where}: fed_code {text} does not start with a province code")
    return text


def _province(value: object, fed_code: str, where: str) -> str:
    """The two-letter province; from the column when present, else from the fed_code's SGC prefix."""
    implied = PROVINCE_BY_SGC_CODE[fed_code[:2]]
    text = str(value).strip().upper() if value not in (None, "") else ""
    if not text:
        return implied
    if text in PROVINCE_BY_SGC_CODE:  # a numeric SGC code
        text = PROVINCE_BY_SGC_CODE[text]
    if text not in PROVINCE_NAMES:
        raise DistrictSourceError(f"{where}: unknown province {value!r}")
    if text != implied:
        raise DistrictSourceError(f"{where}: province {text} disagrees with fed_code {fed_code} ({implied})")
    return text


def clean_name(value: object) -> str:
    """A district name as people write it, with Windows-1252 characters mis-decoded as Latin-1 repaired.

    Some published files carry C1 control characters where the Windows-1252 punctuation was
    (U+0092 for ’, U+009C for œ: "Île-des-S\x9curs"); shown as is they render as empty boxes.
    ASCII files spell the em dash of the official names as ``--`` ("Banff--Airdrie" in the 2013
    file): it is stored as the official ``—``, so participants, the admin, exports and letters show
    the name the House of Commons uses (fed codes, not names, identify a district).
    """
    text = str(value or "").strip()
    text = "".join(
        bytes([ord(char)]).decode("cp1252", errors="replace") if 0x80 <= ord(char) < 0xA0 else char
        for char in text
    )
    return _ASCII_EM_DASH.sub("\u2014", text)


_ASCII_EM_DASH = re.compile(r"\s*-{2,3}\s*")


def _record(properties: dict, columns: dict[str, str], where: str) -> DistrictRecord:
    fed_code = _fed_code(properties.get(columns["fed_code"]), where)
    name_en = clean_name(properties.get(columns["name_en"]))
    if not name_en:
        raise DistrictSourceError(f"{where}: district {fed_code} has no English name")
    name_fr = clean_name(properties.get(columns["name_fr"])) if "name_fr" in columns else ""
    province = _province(properties.get(columns["province_code"]) if "province_code" in columns else None, fed_code, where)
    area = None
    if "area_km2" in columns and properties.get(columns["area_km2"]) not in (None, ""):
        try:
            area = float(properties[columns["area_km2"]])
        except (TypeError, ValueError):
            area = None
    population = None
    if "population" in columns and properties.get(columns["population"]) not in (None, ""):
        try:
            population = max(0, int(float(properties[columns["population"]])))
        except (TypeError, ValueError):
            raise DistrictSourceError(
                f"{where}: district {fed_code}'s population {properties[columns['population']]!r} is not a number"
            ) from None
    rep_order = str(properties.get(columns["rep_order"]) or "").strip() if "rep_order" in columns else ""
    return DistrictRecord(fed_code, name_en, name_fr or name_en, province, None, area, population, rep_order)


# --- geometry handling ---------------------------------------------------------------------------


def crs_from_text(text: str, where: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise DistrictSourceError(
            f"{where}: unknown coordinate reference system {text[:120]!r} ({exc}). "
            "Give it with --source-crs (the official files use EPSG:3347)."
        ) from exc


def to_wgs84(geometry: shapely.Geometry, crs: CRS) -> shapely.Geometry:
    if crs.equals(WGS84, ignore_axis_order=True):
        return geometry
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)
    return shapely.transform(geometry, lambda xy: _stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _stack(pair):
    import numpy as np

    return np.column_stack(pair)


def repair(geometry: shapely.Geometry, label: str, notes: list[str]) -> shapely.Geometry:
    """Make a geometry valid and polygonal; note the repair; raise when nothing usable is left."""
    if geometry.is_empty:
        raise DistrictSourceError(f"{label}: empty geometry")
    if geometry.is_valid and geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    reason = explain_validity(geometry)
    fixed = shapely.make_valid(geometry)
    polygons = [part for part in getattr(fixed, "geoms", [fixed]) if part.geom_type in ("Polygon", "MultiPolygon")]
    fixed = shapely.unary_union(polygons) if polygons else None
    if fixed is None or fixed.is_empty or not fixed.is_valid:
        raise DistrictSourceError(f"{label}: broken geometry that make_valid cannot repair ({reason})")
    notes.append(f"{label}: repaired broken geometry ({reason})")
    return fixed


def _merge_parts(records: list[DistrictRecord], notes: list[str]) -> list[DistrictRecord]:
    """Several features of one district (multi-part files) become one district."""
    merged: dict[str, DistrictRecord] = {}
    for record in records:
        existing = merged.get(record.fed_code)
        if existing is None:
            merged[record.fed_code] = record
            continue
        if existing.geometry is not None and record.geometry is not None:
            existing.geometry = shapely.unary_union([existing.geometry, record.geometry])
            notes.append(f"district {record.fed_code}: merged a further part")
        else:
            raise DistrictSourceError(f"district {record.fed_code} appears twice")
    return list(merged.values())


# --- the three kinds of source ------------------------------------------------------------------


@dataclass
class Feature:
    where: str  # "file feature N", for messages
    properties: dict
    geometry: shapely.Geometry | None  # in the source's CRS; None when the feature has none
    error: str | None = None  # an unreadable geometry: the caller decides how to report it


@dataclass
class FeatureSource:
    kind: str  # "geojson" | "shapefile"
    crs: CRS
    columns: list[str]
    features: Iterator[Feature]
    total: int


@contextmanager
def open_features(path: Path, *, source_crs: str | None = None, progress: Progress = _quiet) -> Iterator[FeatureSource]:
    """The features of a GeoJSON file or a shapefile (``.shp``, folder or ``.zip``), streamed."""
    name = path.name.lower()
    if path.is_dir() or name.endswith((".shp", ".zip")):
        with _shapefile_features(path, source_crs, progress) as features:
            yield features
    elif name.endswith((".geojson", ".json")):
        yield _geojson_features(path, source_crs)
    else:
        raise DistrictSourceError(
            f"{path}: unknown kind of file (expected .geojson/.json, or .shp, a folder or .zip holding a shapefile)"
        )


def _geojson_features(path: Path, source_crs: str | None) -> FeatureSource:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DistrictSourceError(f"{path}: not valid JSON ({exc})") from exc
    raw = document.get("features") if isinstance(document, dict) else None
    if not isinstance(raw, list) or not raw:
        raise DistrictSourceError(f"{path}: not a GeoJSON FeatureCollection with features")
    crs_text = source_crs
    if crs_text is None and isinstance(document.get("crs"), dict):
        crs_text = (document["crs"].get("properties") or {}).get("name")
    crs = crs_from_text(crs_text, str(path)) if crs_text else WGS84  # RFC 7946: WGS84 by default

    def features() -> Iterator[Feature]:
        for index, item in enumerate(raw, start=1):
            feature = Feature(f"{path.name} feature {index}", item.get("properties") or {}, None)
            if item.get("geometry"):
                try:
                    feature.geometry = shape(item["geometry"])
                except (ValueError, TypeError, AttributeError, KeyError) as exc:
                    feature.error = f"unreadable geometry ({exc})"
            yield feature

    return FeatureSource("geojson", crs, list((raw[0].get("properties") or {}).keys()), features(), len(raw))


@contextmanager
def _shapefile_features(path: Path, source_crs: str | None, progress: Progress) -> Iterator[FeatureSource]:
    import shapefile  # pyshp

    with tempfile.TemporaryDirectory(prefix="floodlight-shp-") as folder:
        if path.is_file() and path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(folder)
            except zipfile.BadZipFile as exc:
                raise DistrictSourceError(f"{path}: not a valid zip archive ({exc})") from exc
            shp_path = _find_shapefile(Path(folder))
        else:
            shp_path = _find_shapefile(path)
        prj_path = shp_path.with_suffix(".prj")
        if source_crs:
            crs = crs_from_text(source_crs, str(shp_path))
        elif prj_path.exists():
            crs = crs_from_text(prj_path.read_text(encoding="latin-1").strip(), str(prj_path))
        else:
            raise DistrictSourceError(
                f"{shp_path}: no .prj file, so the coordinate reference system is unknown; "
                "give it with --source-crs (the official files use EPSG:3347)"
            )
        try:
            reader = shapefile.Reader(str(shp_path), encoding="utf-8", encodingErrors="replace")
        except shapefile.ShapefileException as exc:
            raise DistrictSourceError(f"{shp_path}: unreadable shapefile ({exc})") from exc
        with reader:
            progress(f"{shp_path.name}: {len(reader)} records, CRS {crs.name}")

            def features() -> Iterator[Feature]:
                for index, shape_record in enumerate(reader.iterShapeRecords(), start=1):
                    feature = Feature(f"{shp_path.name} record {index}", shape_record.record.as_dict(), None)
                    if shape_record.shape.shapeType != shapefile.NULL:
                        try:
                            feature.geometry = shape(shape_record.shape.__geo_interface__)
                        except (ValueError, TypeError, AttributeError, KeyError) as exc:
                            feature.error = f"unreadable geometry ({exc})"
                    yield feature

            yield FeatureSource("shapefile", crs, [f[0] for f in reader.fields[1:]], features(), len(reader))


def _read_district_features(
    path: Path, *, field_map: dict[str, str] | None, source_crs: str | None, progress: Progress
) -> DistrictSource:
    with open_features(path, source_crs=source_crs, progress=progress) as source:
        columns = _resolve_columns(source.columns, field_map, path.name)
        notes: list[str] = []
        records: list[DistrictRecord] = []
        for index, feature in enumerate(source.features, start=1):
            record = _record(feature.properties, columns, feature.where)
            if feature.error:
                raise DistrictSourceError(f"{feature.where} (district {record.fed_code}): {feature.error}")
            if feature.geometry is None:
                raise DistrictSourceError(f"{feature.where} (district {record.fed_code}): no geometry")
            record.geometry = repair(to_wgs84(feature.geometry, source.crs), f"district {record.fed_code}", notes)
            records.append(record)
            if index % 50 == 0 or index == source.total:
                progress(f"read {index}/{source.total} {'records' if source.kind == 'shapefile' else 'features'}")
        return DistrictSource(_merge_parts(records, notes), source.kind, source.crs.to_string(), notes)


def _find_shapefile(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = sorted(path.rglob("*.shp"))
    if not candidates:
        raise DistrictSourceError(f"{path}: no .shp file in this folder/archive")
    if len(candidates) > 1:
        raise DistrictSourceError(
            f"{path}: several shapefiles ({', '.join(c.name for c in candidates)}); give the .shp path"
        )
    return candidates[0]


def read_names_csv(path: Path, *, field_map: dict[str, str] | None = None, progress: Progress = _quiet) -> DistrictSource:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    columns = _resolve_columns(reader.fieldnames or [], field_map, path.name)
    records = [_record(row, columns, f"{path.name} line {line}") for line, row in enumerate(reader, start=2)]
    if not records:
        raise DistrictSourceError(f"{path}: no districts")
    progress(f"read {len(records)} districts (names only, no boundaries)")
    notes: list[str] = []
    return DistrictSource(_merge_parts(records, notes), "csv", None, notes)


# --- FSA boundaries ----------------------------------------------------------------------------

FSA_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "fsa": ("fsa", "CFSAUID", "FSA", "CFSA", "FSA_CODE", "POSTAL_FSA"),
    "province_code": ("province_code", "PRUID", "PROV_CODE", "PRABBR", "PR_ABBR", "PROVINCE"),
}


@dataclass
class FsaBoundaryRecord:
    fsa: str
    province_code: str
    geometry: shapely.Geometry  # EPSG:4326, valid


@dataclass
class FsaBoundarySource:
    records: list[FsaBoundaryRecord]
    crs: str
    repaired: int = 0
    notes: list[str] = field(default_factory=list)


def read_fsa_boundaries(
    source: str | os.PathLike[str],
    *,
    field_map: dict[str, str] | None = None,
    source_crs: str | None = None,
    progress: Progress = _quiet,
) -> FsaBoundarySource:
    """FSA polygons from a GeoJSON, a shapefile (``.shp``, folder, ``.zip``) or a URL of one.

    Statistics Canada's ``lfsa000b21a_e.zip`` (EPSG:3347, ``CFSAUID``/``PRUID``) and the reference
    ``fsa_2021.geojson`` (``fsa``/``province_code``) are recognized without a field mapping.
    """
    with local_copy(source, progress) as path, open_features(path, source_crs=source_crs, progress=progress) as features:
        columns = _resolve_columns(features.columns, field_map, path.name, FSA_FIELD_ALIASES, ("fsa",))
        notes: list[str] = []
        by_fsa: dict[str, FsaBoundaryRecord] = {}
        for index, feature in enumerate(features.features, start=1):
            fsa = str(feature.properties.get(columns["fsa"]) or "").strip().upper().replace(" ", "")
            if len(fsa) != 3 or not (fsa[0].isalpha() and fsa[1].isdigit() and fsa[2].isalpha()):
                raise DistrictSourceError(f"{feature.where}: {fsa or 'an empty value'!r} is not an FSA (e.g. K1A)")
            if feature.error or feature.geometry is None:
                raise DistrictSourceError(f"{feature.where} (FSA {fsa}): {feature.error or 'no geometry'}")
            province = _fsa_province(feature.properties.get(columns["province_code"]) if "province_code" in columns
                                     else None, fsa, feature.where)
            geometry = repair(to_wgs84(feature.geometry, features.crs), f"FSA {fsa}", notes)
            if fsa in by_fsa:  # a multi-part FSA delivered as several features
                geometry = shapely.unary_union([by_fsa[fsa].geometry, geometry])
            by_fsa[fsa] = FsaBoundaryRecord(fsa, province, geometry)
            if index % 250 == 0 or index == features.total:
                progress(f"read {index}/{features.total} FSA polygons")
        if not by_fsa:
            raise DistrictSourceError(f"{path}: no FSA polygons")
        return FsaBoundarySource(sorted(by_fsa.values(), key=lambda r: r.fsa), features.crs.to_string(),
                                 repaired=len(notes), notes=notes)


def _fsa_province(value: object, fsa: str, where: str) -> str:
    """The FSA's province: the column (a code or an SGC number) when given, else its first letter's."""
    allowed = PROVINCES_BY_FIRST_LETTER.get(fsa[0], ())
    text = str(value).strip().upper() if value not in (None, "") else ""
    if text.endswith(".0"):
        text = text[:-2]
    text = PROVINCE_BY_SGC_CODE.get(text, text)
    if not text:
        if len(allowed) != 1:
            raise DistrictSourceError(f"{where}: FSA {fsa} needs a province column (its letter is shared)")
        return allowed[0]
    if text not in PROVINCE_NAMES:
        raise DistrictSourceError(f"{where}: unknown province {value!r} for FSA {fsa}")
    if allowed and text not in allowed:
        raise DistrictSourceError(f"{where}: FSA {fsa} cannot be in {text} (its first letter is {'/'.join(allowed)}'s)")
    return text


# --- FSA centroids ------------------------------------------------------------------------------

GEONAMES_FIELDS = (
    "country_code", "postal_code", "place_name", "state_name", "state_code", "county_name",
    "county_code", "community_name", "community_code", "latitude", "longitude", "accuracy",
)


@dataclass(frozen=True)
class FsaRecord:
    fsa: str
    place_name: str
    province_code: str
    lat: float | None
    lon: float | None
    accuracy: int | None
    # An FSA listed with several places (e.g. L9X: Barrie, Minesing, Midhurst, Springwater) gets
    # their mean as centroid, as pgeocode does; the farthest place from it bounds the FSA's extent.
    spread_km: float = 0.0


def pgeocode_cache_file(data_dir: str | os.PathLike[str]) -> Path:
    """The file pgeocode reads for Canada in its data directory (``PGEOCODE_DATA_DIR``)."""
    return Path(data_dir) / "CA.txt"


def read_fsa_centroids(source: str | os.PathLike[str], progress: Progress = _quiet) -> list[FsaRecord]:
    """FSA centroids from the pgeocode cache (CSV with header), the raw GeoNames dump (TSV) or its zip.

    ``source`` may also be pgeocode's data directory itself (the one PGEOCODE_DATA_DIR names).
    """
    with local_copy(source, progress) as path:
        if path.is_dir():
            path = pgeocode_cache_file(path)
            if not path.exists():
                raise DistrictSourceError(f"{path}: pgeocode's cached CA.txt is not there")
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.upper().endswith("CA.TXT")), None)
                if member is None:
                    raise DistrictSourceError(f"{path}: no CA.txt inside")
                text = archive.read(member).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if lines and lines[0].startswith("country_code,"):
        rows: Iterable[dict] = csv.DictReader(io.StringIO(text))
    else:
        rows = (dict(zip(GEONAMES_FIELDS, line.split("\t"), strict=False)) for line in lines if line.strip())
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        if (row.get("country_code") or "").strip() != "CA":
            continue
        fsa = (row.get("postal_code") or "").strip().upper()[:3]
        if len(fsa) == 3 and fsa[0].isalpha():
            grouped.setdefault(fsa, []).append(row)
    records: dict[str, FsaRecord] = {}
    for fsa, group in grouped.items():
        province = (group[0].get("state_code") or "").strip().upper()
        allowed = PROVINCES_BY_FIRST_LETTER.get(fsa[0], ())
        if province not in allowed:
            # The first letter is authoritative (Canada Post); a disagreeing row keeps its letter's province.
            if len(allowed) != 1:
                continue
            province = allowed[0]
        places = [(lat, lon) for lat, lon in ((_float(r.get("latitude")), _float(r.get("longitude"))) for r in group)
                  if lat is not None and lon is not None]
        lat = sum(p[0] for p in places) / len(places) if places else None
        lon = sum(p[1] for p in places) / len(places) if places else None
        spread = max((great_circle_km(lat, lon, p[0], p[1]) for p in places), default=0.0) if places else 0.0
        accuracies = [a for a in (_int(r.get("accuracy")) for r in group) if a is not None]
        records[fsa] = FsaRecord(
            fsa=fsa,
            place_name=" / ".join(dict.fromkeys((r.get("place_name") or "").strip() for r in group))[:300],
            province_code=province,
            lat=lat,
            lon=lon,
            accuracy=min(accuracies) if accuracies else None,
            spread_km=round(spread, 3),
        )
    if not records:
        raise DistrictSourceError(f"{source}: no Canadian FSA rows found")
    progress(f"read {len(records)} FSA centroids")
    return sorted(records.values(), key=lambda r: r.fsa)


def _float(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None
