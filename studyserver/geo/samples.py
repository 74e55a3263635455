"""Synthetic National Address Register files, for the tests and the loader benchmark (no Django).

Postal codes are clusters of addresses around a centre: "whole" codes around a random point well
inside a district, "split" codes around a point on a boundary between two districts. Each
address's true district is computed independently of the loader (point-in-polygon in lon/lat,
EPSG:4326, before the coordinates are projected to the register's EPSG:3347), so tests can check
the loader's decisions against it.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from .candidates import DistrictShape

NAR_COLUMNS = (
    "LOC_GUID", "ADDR_GUID", "APT_NO_LABEL", "CIVIC_NO", "CIVIC_NO_SUFFIX", "OFFICIAL_STREET_NAME",
    "OFFICIAL_STREET_TYPE", "OFFICIAL_STREET_DIR", "PROV_CODE", "CSD_ENG_NAME", "CSD_FRE_NAME",
    "CSD_TYPE_ENG_CODE", "CSD_TYPE_FRE_CODE", "MAIL_STREET_NAME", "MAIL_STREET_TYPE", "MAIL_STEET_DIR",
    "MAIL_MUN_NAME", "MAIL_PROV_ABVN", "MAIL_POSTAL_CODE", "BG_DLS_LSD", "BG_DLS_QTR", "BG_DLS_SCTN",
    "BG_DLS_TWNSHP", "BG_DLS_RNG", "BG_DLS_MRD", "BG_X", "BG_Y", "BU_N_CIVIC_ADD", "BU_USE",
)
# Letters a postal code may hold after its first (no D F I O Q U).
_LETTERS = np.array([c for c in string.ascii_uppercase if c not in "DFIOQU"])
_TO_LAMBERT = Transformer.from_crs("EPSG:4326", "EPSG:3347", always_xy=True)
_SGC = {"NL": "10", "PE": "11", "NS": "12", "NB": "13", "QC": "24", "ON": "35", "MB": "46", "SK": "47",
        "AB": "48", "BC": "59", "YT": "60", "NT": "61", "NU": "62"}
_FIRST_LETTER = {"NL": "A", "NS": "B", "PE": "C", "NB": "E", "QC": "H", "ON": "K", "MB": "R", "SK": "S",
                 "AB": "T", "BC": "V", "YT": "Y", "NT": "X", "NU": "X"}


@dataclass
class PostalTruth:
    postal_code: str
    kind: str  # "whole" | "split"
    residential_shares: dict[str, float]  # true district → share of the code's residential addresses


@dataclass
class RegisterSample:
    frame: pd.DataFrame  # the register's columns, one row per address
    truth: dict[str, PostalTruth]


def generate_register(
    districts: Sequence[DistrictShape],
    *,
    whole_codes: int,
    split_codes: int,
    addresses_per_code: int = 30,
    radius_m: float = 250.0,
    non_residential_share: float = 0.1,
    seed: int = 1,
) -> RegisterSample:
    """A register sample: ``whole_codes`` codes inside one district, ``split_codes`` across a boundary.

    Split codes keep only centres where the minority district holds at least 15 % of the
    residential addresses, so "split" means a participant really could be in either.
    Non-residential addresses (BU_USE 3) are scattered far off to check that they are ignored.
    """
    rng = np.random.default_rng(seed)
    prepared = [d.geometry for d in districts]
    for geometry in prepared:
        shapely.prepare(geometry)
    boundaries: dict[int, shapely.Geometry] = {}
    tree = shapely.STRtree(prepared)
    parts: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = []
    truth: dict[str, PostalTruth] = {}
    used: set[str] = set()
    wanted = {"whole": whole_codes, "split": split_codes}
    attempts = 0
    while any(wanted.values()) and attempts < 50 * (whole_codes + split_codes + 10):
        attempts += 1
        kind = "split" if wanted["split"] and (not wanted["whole"] or rng.random() < 0.5) else "whole"
        home = int(rng.integers(len(districts)))
        if kind == "split" and home not in boundaries:
            boundaries[home] = prepared[home].boundary
        centre = _centre(prepared[home], boundaries.get(home), kind, rng)
        if centre is None:
            continue
        lon, lat = _scatter(centre, addresses_per_code, radius_m, rng)
        located = _true_districts(tree, lon, lat)
        if (located < 0).any():
            continue  # in water or outside the outlines: a real register has no address there
        codes, counts = np.unique(located, return_counts=True)
        shares = counts / counts.sum()
        if kind == "whole" and len(codes) != 1:
            continue
        if kind == "split" and (len(codes) < 2 or np.sort(shares)[-2] < 0.15):
            continue
        province = districts[int(codes[0])].province_code
        postal_code = _new_code(province, rng, used)
        wanted[kind] -= 1
        truth[postal_code] = PostalTruth(postal_code, kind,
                                         {districts[int(c)].fed_code: float(s) for c, s in zip(codes, shares, strict=True)})
        uses = rng.choice(np.array(["1", "2", "4"]), size=len(lon), p=[0.7, 0.1, 0.2])
        parts.append((postal_code, province, lon, lat, uses))
        extra = int(round(non_residential_share * len(lon)))
        if extra:
            # Offices and shops filed under the code but far away: they must not sway the decision.
            point = _centre(prepared[int(rng.integers(len(districts)))], None, "whole", rng)
            if point is not None:
                far_lon, far_lat = _scatter(point, extra, radius_m, rng)
                parts.append((postal_code, province, far_lon, far_lat, np.full(extra, "3")))
    if any(wanted.values()):
        raise RuntimeError(f"could not place every sample postal code (missing {wanted})")
    return RegisterSample(_frame(parts, rng), truth)


def _centre(geometry: shapely.Geometry, boundary: shapely.Geometry | None, kind: str,
            rng: np.random.Generator) -> tuple[float, float] | None:
    if kind == "split":
        point = boundary.interpolate(float(rng.random()), normalized=True)
        return point.x, point.y
    west, south, east, north = geometry.bounds
    for _ in range(100):
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if shapely.contains_xy(geometry, lon, lat):
            return lon, lat
    return None


def _scatter(centre: tuple[float, float], count: int, radius_m: float, rng: np.random.Generator):
    angle = rng.uniform(0, 2 * np.pi, count)
    distance = radius_m * np.sqrt(rng.uniform(0, 1, count))
    lat = centre[1] + distance * np.sin(angle) / 111_320.0
    lon = centre[0] + distance * np.cos(angle) / (111_320.0 * np.cos(np.radians(centre[1])))
    return lon, lat


def _true_districts(tree: shapely.STRtree, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    found = np.full(len(lon), -1)
    point_index, geom_index = tree.query(shapely.points(lon, lat), predicate="within")
    found[point_index] = geom_index
    return found


def _new_code(province: str, rng: np.random.Generator, used: set[str]) -> str:
    while True:
        letters = rng.choice(_LETTERS, 2)
        digits = rng.integers(0, 10, 3)
        # Second character 1–9: an urban FSA (0 is rural).
        code = f"{_FIRST_LETTER[province]}{max(1, digits[0])}{letters[0]}{digits[1]}{letters[1]}{digits[2]}"
        if code not in used:
            used.add(code)
            return code


def _frame(parts: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]], rng: np.random.Generator) -> pd.DataFrame:
    sizes = [len(part[2]) for part in parts]
    count = sum(sizes)
    provinces = np.repeat([part[1] for part in parts], sizes)
    x, y = _TO_LAMBERT.transform(np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))
    guid = np.char.mod("%016x", rng.integers(1 << 62, size=count, dtype=np.int64))
    frame = pd.DataFrame({column: "" for column in NAR_COLUMNS}, index=range(count))
    frame["LOC_GUID"] = guid
    frame["ADDR_GUID"] = guid
    frame["CIVIC_NO"] = rng.integers(1, 9999, count).astype(str)
    frame["OFFICIAL_STREET_NAME"] = "de l'Église"  # not ASCII: exercises the file's encoding
    frame["OFFICIAL_STREET_TYPE"] = "RUE"
    frame["PROV_CODE"] = pd.Series(provinces).map(_SGC).to_numpy()
    frame["MAIL_POSTAL_CODE"] = np.repeat([part[0] for part in parts], sizes)
    frame["MAIL_PROV_ABVN"] = provinces
    frame["BG_X"] = np.round(x, 1)
    frame["BG_Y"] = np.round(y, 1)
    frame["BU_N_CIVIC_ADD"] = "1"
    frame["BU_USE"] = np.concatenate([p[4] for p in parts])
    return frame


def write_register(frame: pd.DataFrame, folder: Path, *, files: int = 2, encoding: str = "utf-8") -> list[Path]:
    """Write the sample as ``Address_N.csv`` files in the register's layout (split by row ranges)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, part in enumerate(np.array_split(np.arange(len(frame)), files), start=1):
        path = folder / f"Address_{number}.csv"
        frame.iloc[part].to_csv(path, index=False, encoding=encoding, columns=list(NAR_COLUMNS))
        paths.append(path)
    return paths
