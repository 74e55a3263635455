"""Full postal codes → districts from addresses (no Django here).

Reads Statistics Canada's National Address Register (``Address_*.csv`` files, in a zip, a folder
or alone; layout in ../shared/data/README.md) in bounded chunks: each chunk's building points
(``BG_X``/``BG_Y``, EPSG:3347) are located in the districts with one vectorized STRtree query and
counted per (postal code, district) in numpy arrays; memory grows with the number of distinct
postal codes (~900,000 in Canada), never with the number of rows (~16 million).

Also reads a researcher's own concordance, ``postal_code,fed_code[,weight]``.

``BU_USE`` says what a building is used for (1 residential, 2 partly residential, 3
non-residential, 4 unknown): non-residential addresses are left out, since participants live
somewhere; unknown ones are kept (the register marks many homes 4).
"""

from __future__ import annotations

import csv
import re
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import shapely

from .candidates import DistrictShape, to_lambert

DEFAULT_POSTAL_CODE_THRESHOLD = 0.95  # Study.postal_code_threshold's default
REGISTER_COLUMNS = ("MAIL_POSTAL_CODE", "BG_X", "BG_Y", "BU_USE")
CONCORDANCE_COLUMNS = ("postal_code", "fed_code")
NON_RESIDENTIAL = "3"
SNAP_METRES = 1000.0  # a building just outside every (simplified) outline goes to the nearest district this close
CHUNK_ROWS = 200_000
DENSIFY_DEGREES = 0.01  # longest edge (≈1 km) kept when projecting the districts
POSTAL_CODE = re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\d[ABCEGHJ-NPRSTV-Z]\d$")
_BOM = "\ufeffï»¿"

Progress = Callable[[str], None]


class AddressSourceError(ValueError):
    """An address file that cannot be loaded; the message says what to fix."""


@dataclass
class AddressCounts:
    """Per postal code, the districts its addresses fall in, largest share first."""

    postal_codes: dict[str, list[tuple[str, float]]]  # code → [(fed_code, weight)], sorted by weight
    kind: str  # "register" | "concordance"
    rows: int = 0
    placed: int = 0
    snapped: int = 0
    outside: int = 0  # no district within SNAP_METRES
    non_residential: int = 0
    bad_postal_code: int = 0
    bad_coordinates: int = 0
    unknown_districts: dict[str, int] = field(default_factory=dict)  # concordance fed_codes not loaded
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        split = sum(1 for rows in self.postal_codes.values() if len(rows) > 1)
        lines = [f"read {self.rows:,} rows from {len(self.files)} file(s) in {self.seconds:.1f} s "
                 f"({self.rows / max(self.seconds, 1e-9):,.0f} rows/s)",
                 f"placed {self.placed:,} addresses in {len(self.postal_codes):,} postal codes "
                 f"({split:,} span several districts)"]
        skipped = [(self.non_residential, "non-residential (BU_USE 3)"), (self.bad_postal_code, "without a valid postal code"),
                   (self.bad_coordinates, "without coordinates"), (self.outside, f"outside every district (> {SNAP_METRES:g} m)")]
        lines += [f"  skipped {count:,} {why}" for count, why in skipped if count]
        if self.snapped:
            lines.append(f"  {self.snapped:,} just outside the outlines, given to the nearest district")
        if self.unknown_districts:
            lines.append(f"  skipped rows with fed_codes not loaded: {dict(sorted(self.unknown_districts.items())[:10])}")
        return lines


# --- opening the files ---------------------------------------------------------------------------


@contextmanager
def open_csv_files(path: Path) -> Iterator[list[tuple[str, Callable[[], IO[bytes]], int]]]:
    """(name, opener, size in bytes) of each CSV to read: a zip's or folder's ``Address_*.csv``, or the file."""
    with ExitStack() as stack:
        if path.is_dir():
            files = sorted(path.rglob("Address_*.csv")) or sorted(path.rglob("*.csv"))
            if not files:
                raise AddressSourceError(f"{path}: no Address_*.csv file in this folder")
            yield [(f.name, partial(open, f, "rb"), f.stat().st_size) for f in files]
        elif path.suffix.lower() == ".zip":
            try:
                archive = stack.enter_context(zipfile.ZipFile(path))
            except zipfile.BadZipFile as exc:
                raise AddressSourceError(f"{path}: not a valid zip archive ({exc})") from exc
            members = [m for m in archive.infolist() if Path(m.filename).name.startswith("Address_")
                       and m.filename.lower().endswith(".csv")]
            members = members or [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if not members:
                raise AddressSourceError(f"{path}: no Address_*.csv inside")
            members.sort(key=lambda m: m.filename)
            yield [(m.filename, partial(archive.open, m), m.file_size) for m in members]
        elif path.is_file():
            yield [(path.name, partial(open, path, "rb"), path.stat().st_size)]
        else:
            raise AddressSourceError(f"{path}: no such file or folder")


def read_header(opener: Callable[[], IO[bytes]], name: str) -> list[str]:
    # Latin-1 decodes any byte, and the columns we use are ASCII: a file that is not valid UTF-8
    # (some releases are Windows-1252) reads the same.
    with opener() as handle:
        first = handle.readline().decode("latin-1")
    header = next(csv.reader([first]), [])
    if not header:
        raise AddressSourceError(f"{name}: empty file (no header row)")
    return [column.strip().lstrip(_BOM) for column in header]


def check_columns(header: Sequence[str], required: Sequence[str], name: str) -> None:
    present = {column.upper() for column in header}
    missing = [column for column in required if column.upper() not in present]
    if missing:
        raise AddressSourceError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(an address file needs {', '.join(REGISTER_COLUMNS)}; a concordance needs postal_code,fed_code[,weight]; "
            f"columns present: {', '.join(header[:40])})"
        )


# --- encoding postal codes as integers (vectorized counting) -----------------------------------------------

_PLACES = (256 ** np.arange(5, -1, -1)).astype(np.int64)
DISTRICT_BITS = 12  # up to 4,096 districts per order


def encode_postal_codes(codes: np.ndarray) -> np.ndarray:
    """6-character ASCII postal codes → int64 (their bytes, big-endian)."""
    raw = np.asarray(codes, dtype="S6").view(np.uint8).reshape(-1, 6).astype(np.int64)
    return raw @ _PLACES


def decode_postal_code(value: int) -> str:
    return int(value).to_bytes(6, "big").decode("ascii")


class PairCounter:
    """Sums weights per (postal code, district), as sorted unique int64 keys; merges lazily."""

    def __init__(self) -> None:
        self._keys: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []
        self._pending = 0

    def add(self, postal: np.ndarray, district: np.ndarray, weight: np.ndarray) -> None:
        keys = (postal << DISTRICT_BITS) | district.astype(np.int64)
        self._keys.append(keys)
        self._weights.append(weight.astype(np.float64))
        self._pending += len(keys)
        if self._pending > 2_000_000:
            self._merge()

    def _merge(self) -> None:
        if len(self._keys) <= 1:
            self._pending = 0
            return
        keys, inverse = np.unique(np.concatenate(self._keys), return_inverse=True)
        weights = np.bincount(inverse, weights=np.concatenate(self._weights))
        self._keys, self._weights, self._pending = [keys], [weights], 0

    def result(self, fed_codes: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        self._merge()
        if not self._keys:
            return {}
        keys, weights = self._keys[0], self._weights[0]
        if len(self._keys) == 1 and len(keys) != len(np.unique(keys)):  # a single unmerged chunk
            keys, inverse = np.unique(keys, return_inverse=True)
            weights = np.bincount(inverse, weights=weights)
        postal, district = keys >> DISTRICT_BITS, keys & ((1 << DISTRICT_BITS) - 1)
        out: dict[str, list[tuple[str, float]]] = {}
        starts = np.flatnonzero(np.r_[True, np.diff(postal) != 0])
        ends = np.r_[starts[1:], len(postal)]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = sorted(((fed_codes[int(d)], float(w)) for d, w in zip(district[start:end], weights[start:end],
                                                                          strict=True)),
                          key=lambda item: (-item[1], item[0]))
            out[decode_postal_code(int(postal[start]))] = rows
        return out


# --- reading ----------------------------------------------------------------------------------------


class DistrictLocator:
    """Vectorized point-in-polygon in Statistics Canada Lambert (EPSG:3347, the register's CRS).

    The districts are prepared once and the query runs from them into an STRtree of each chunk's
    points: a prepared polygon answers point-in-polygon from its edge index, where querying each
    point against the district tree would walk every vertex of every candidate district.
    """

    def __init__(self, districts: Sequence[DistrictShape]) -> None:
        if not districts:
            raise AddressSourceError("no district boundaries loaded for this representation order")
        self.fed_codes = [d.fed_code for d in districts]
        # Densified first: a long straight edge in lon/lat (the 60th parallel between the provinces
        # and the territories) is a curve in Lambert; projecting its two ends alone would move the
        # border by kilometres.
        self.shapes = np.array([to_lambert(shapely.segmentize(d.geometry, DENSIFY_DEGREES)) for d in districts],
                               dtype=object)
        shapely.prepare(self.shapes)
        self.tree = shapely.STRtree(self.shapes)

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(district index or -1, snapped flag) per point."""
        points = shapely.points(x, y)
        found = np.full(len(points), -1, dtype=np.int64)
        if len(points) == 0:
            return found, np.zeros(0, dtype=bool)
        geom_index, point_index = shapely.STRtree(points).query(self.shapes, predicate="contains")
        found[point_index] = geom_index
        # A point on a boundary (or just outside a simplified outline) goes to the nearest district.
        snapped = np.zeros(len(points), dtype=bool)
        missing = np.flatnonzero(found < 0)
        if missing.size:
            near_point, near_geom = self.tree.query_nearest(points[missing], max_distance=SNAP_METRES, all_matches=False)
            found[missing[near_point]] = near_geom
            snapped[missing[near_point]] = True
        return found, snapped


def read_addresses(
    path: Path,
    districts: Sequence[DistrictShape],
    *,
    residential_only: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress = lambda _m: None,
) -> AddressCounts:
    """Count addresses per (postal code, district) from a register zip/folder/CSV or a concordance CSV."""
    started = time.monotonic()
    with open_csv_files(path) as files:
        headers = [(name, opener, size, read_header(opener, name)) for name, opener, size in files]
        concordance = len(headers) == 1 and {c.lower() for c in headers[0][3]} >= set(CONCORDANCE_COLUMNS)
        if concordance:
            counts = _read_concordance(headers[0], [d.fed_code for d in districts], chunk_rows)
        else:
            for name, _opener, _size, header in headers:
                check_columns(header, REGISTER_COLUMNS, name)
            counts = _read_register(headers, DistrictLocator(districts), residential_only, chunk_rows, progress)
    counts.seconds = time.monotonic() - started
    return counts


def _chunks(opener: Callable[[], IO[bytes]], header: list[str], columns: Sequence[str], chunk_rows: int,
            handle_out: list[IO[bytes]]) -> Iterator[pd.DataFrame]:
    wanted = {c.upper(): c for c in columns}
    names = list(header)
    with opener() as handle:
        handle_out.append(handle)
        reader = pd.read_csv(
            handle, header=0, names=names, usecols=[n for n in names if n.upper() in wanted], dtype=str,
            keep_default_na=False, encoding="latin-1", chunksize=chunk_rows, on_bad_lines="skip",
        )
        for chunk in reader:
            chunk.columns = [wanted[c.upper()] for c in chunk.columns]
            yield chunk


def _normalized_postal_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes = values.str.upper().str.replace(" ", "", regex=False).str.strip()
    valid = codes.str.match(POSTAL_CODE).to_numpy(dtype=bool)
    return codes.to_numpy(dtype=object), valid


def _read_register(headers, locator: DistrictLocator, residential_only: bool, chunk_rows: int,
                   progress: Progress) -> AddressCounts:
    counter = PairCounter()
    counts = AddressCounts({}, "register", files=[h[0] for h in headers])
    total_bytes = sum(h[2] for h in headers) or 1
    done_bytes = 0
    last_report = time.monotonic()
    started = last_report
    for name, opener, size, header in headers:
        handles: list[IO[bytes]] = []
        for chunk in _chunks(opener, header, REGISTER_COLUMNS, chunk_rows, handles):
            counts.rows += len(chunk)
            keep = np.ones(len(chunk), dtype=bool)
            if residential_only:
                non_residential = (chunk["BU_USE"].str.strip() == NON_RESIDENTIAL).to_numpy()
                counts.non_residential += int(non_residential.sum())
                keep &= ~non_residential
            codes, valid = _normalized_postal_codes(chunk["MAIL_POSTAL_CODE"])
            counts.bad_postal_code += int((keep & ~valid).sum())
            keep &= valid
            x = pd.to_numeric(chunk["BG_X"], errors="coerce").to_numpy(dtype=float)
            y = pd.to_numeric(chunk["BG_Y"], errors="coerce").to_numpy(dtype=float)
            finite = np.isfinite(x) & np.isfinite(y)
            counts.bad_coordinates += int((keep & ~finite).sum())
            keep &= finite
            rows = np.flatnonzero(keep)
            district, snapped = locator.locate(x[rows], y[rows])
            inside = district >= 0
            counts.outside += int((~inside).sum())
            counts.snapped += int(snapped.sum())
            counts.placed += int(inside.sum())
            counter.add(encode_postal_codes(codes[rows][inside].astype(str)), district[inside],
                        np.ones(int(inside.sum())))
            position = _position(handles[-1], size)
            now = time.monotonic()
            if now - last_report >= 2.0:
                last_report = now
                progress(_bar((done_bytes + position) / total_bytes, counts.rows, now - started, name))
        done_bytes += size
    progress(_bar(1.0, counts.rows, time.monotonic() - started, headers[-1][0]))
    counts.postal_codes = counter.result(locator.fed_codes)
    return counts


def _position(handle: IO[bytes], size: int) -> int:
    try:
        return min(handle.tell(), size)
    except (OSError, ValueError):
        return 0


def _bar(fraction: float, rows: int, seconds: float, name: str) -> str:
    width = 30
    filled = int(round(width * min(fraction, 1.0)))
    return (f"[{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%}  {rows:>12,} rows  "
            f"{rows / max(seconds, 1e-9):>9,.0f} rows/s  {name}")


def _read_concordance(header_entry, fed_codes: Sequence[str], chunk_rows: int) -> AddressCounts:
    name, opener, _size, header = header_entry
    index = {code: i for i, code in enumerate(fed_codes)}
    has_weight = "weight" in {c.lower() for c in header}
    columns = ("postal_code", "fed_code", "weight") if has_weight else CONCORDANCE_COLUMNS
    counter = PairCounter()
    counts = AddressCounts({}, "concordance", files=[name])
    handles: list[IO[bytes]] = []
    for chunk in _chunks(opener, header, columns, chunk_rows, handles):
        counts.rows += len(chunk)
        codes, valid = _normalized_postal_codes(chunk["postal_code"])
        counts.bad_postal_code += int((~valid).sum())
        fed = chunk["fed_code"].str.strip().str.replace(r"\.0$", "", regex=True).to_numpy(dtype=object)
        district = np.array([index.get(code, -1) for code in fed], dtype=np.int64)
        for code in fed[valid & (district < 0)]:
            counts.unknown_districts[code] = counts.unknown_districts.get(code, 0) + 1
        weight = (pd.to_numeric(chunk["weight"], errors="coerce").to_numpy(dtype=float) if has_weight
                  else np.ones(len(chunk)))
        keep = valid & (district >= 0) & np.isfinite(weight) & (weight > 0)
        counts.placed += int(keep.sum())
        counter.add(encode_postal_codes(codes[keep].astype(str)), district[keep], weight[keep])
    if counts.rows and not counts.placed:
        raise AddressSourceError(
            f"{name}: no usable row (postal codes like K1A0B1, fed_codes of the loaded districts, positive weights); "
            f"unknown fed_codes: {', '.join(list(counts.unknown_districts)[:5]) or 'none'}"
        )
    counts.postal_codes = counter.result(fed_codes)
    return counts
