"""Bulk import of source photos: a zip with the photos and a CSV manifest, checked row by row.

All or nothing: every row is checked first and the report lists each problem with its row number
(the header is row 1, as in a spreadsheet); only a clean manifest creates source photos, so a fixed
zip can be uploaded again without duplicates.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import transaction

from studyserver.geo.models import District

from .images import MAX_IMAGE_BYTES, PhotoError, clean_photo
from .models import DISTRICT_KINDS, Kind, SourcePhoto, slot_errors

MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("filename", "kind", "place_name_en")
KNOWN_COLUMNS = ("filename", "kind", "fed_code", "province_code", "place_name_en", "place_name_fr")
MAX_MEMBERS = 5_000
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
# Photos barely compress (JPEG and PNG are compressed already) and a manifest ~10×: a member that
# would grow past this ratio is a zip bomb. Below the floor the ratio is not checked (a tiny blank
# file legitimately compresses a lot and costs nothing).
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 1024 * 1024
# What a damaged archive raises when a member is read (bad CRC, truncated data, odd compression).
_BROKEN_MEMBER = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError)


@dataclass(frozen=True)
class RowError:
    row: int
    filename: str
    message: str


@dataclass
class BulkReport:
    created: list[SourcePhoto] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Row:
    number: int
    member: str
    kind: str
    district: Any
    province_code: str
    place_name_en: str
    place_name_fr: str


def _find_manifest(names: list[str]) -> str | None:
    csvs = [n for n in names if n.lower().endswith(".csv") and not n.startswith("__MACOSX/")]
    exact = [n for n in csvs if PurePosixPath(n).name.lower() == MANIFEST_NAME]
    if len(exact) == 1:
        return exact[0]
    return csvs[0] if len(csvs) == 1 else None


class BrokenArchive(Exception):
    """A member of the zip cannot be read (the archive is damaged)."""


def declared_size_problem(bundle: zipfile.ZipFile) -> str | None:
    """What is wrong with the archive by its directory alone (None: it may be read).

    Nothing is decompressed: the sizes and ratios the zip declares are checked first, and reading
    a member (:func:`_read`) never produces more than its declared size, so a member that lies
    about it fails its read instead of filling memory.
    """
    infos = [info for info in bundle.infolist() if not info.is_dir()]
    if len(infos) > MAX_MEMBERS:
        return f"The archive has {len(infos):,} files: at most {MAX_MEMBERS:,}; nothing was imported."
    if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
        return (f"The archive would expand to more than {MAX_TOTAL_BYTES // 1024 ** 3} GB; nothing was imported. "
                "Split it into several uploads.")
    for info in infos:
        limit = MAX_MANIFEST_BYTES if info.filename.lower().endswith(".csv") else MAX_IMAGE_BYTES
        if info.file_size > limit:
            return (f"{info.filename} would expand to {info.file_size / 1024 ** 2:,.0f} MB: at most "
                    f"{limit // 1024 ** 2} MB per {'manifest' if limit == MAX_MANIFEST_BYTES else 'photo'}; "
                    "nothing was imported.")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            return (f"{info.filename} is compressed {info.file_size / max(info.compress_size, 1):,.0f} to 1 (at most "
                    f"{MAX_COMPRESSION_RATIO} to 1 for photos): not a photo archive; nothing was imported.")
    return None


def _read(bundle: zipfile.ZipFile, member: str) -> bytes:
    info = bundle.getinfo(member)
    try:
        with bundle.open(info) as handle:
            data = handle.read(info.file_size + 1)  # never more than it declared (and one byte to tell)
    except _BROKEN_MEMBER as error:
        raise BrokenArchive(f"The archive is damaged ({member}: {error or type(error).__name__}); nothing was "
                            "imported. Zip the photos again.") from None
    if len(data) != info.file_size:
        raise BrokenArchive(f"The archive is damaged ({member} is not the size it declares); nothing was imported.")
    return data


def _image_problem(data: bytes) -> str | None:
    try:
        clean_photo(data)
    except PhotoError as error:
        return str(error)
    return None


def check_archive(archive: IO[bytes], representation_order: str) -> tuple[list[_Row], list[RowError], zipfile.ZipFile | None]:
    """Parse and check the zip; returns the valid rows, the problems and the open zip."""
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return [], [RowError(0, "", "The upload is not a readable .zip archive.")], None
    try:
        return _check_bundle(bundle, representation_order)
    except BrokenArchive as error:
        return [], [RowError(0, "", str(error))], None


def _check_bundle(bundle: zipfile.ZipFile, representation_order: str) -> tuple[list[_Row], list[RowError], zipfile.ZipFile | None]:
    problem = declared_size_problem(bundle)
    if problem:
        return [], [RowError(0, "", problem)], None
    names = [info.filename for info in bundle.infolist() if not info.is_dir()]
    manifest_name = _find_manifest(names)
    if manifest_name is None:
        return [], [RowError(0, "", f"No CSV manifest found (expected {MANIFEST_NAME}).")], None
    try:
        text = _read(bundle, manifest_name).decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [RowError(1, manifest_name, "The manifest is not UTF-8 text.")], None
    reader = csv.DictReader(io.StringIO(text))
    header = [column.strip() for column in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        return [], [RowError(1, manifest_name, f"Missing column(s): {', '.join(missing)}.")], None
    unknown = [column for column in header if column not in KNOWN_COLUMNS]
    if unknown:
        return [], [RowError(1, manifest_name, f"Unknown column(s): {', '.join(unknown)}.")], None

    by_basename: dict[str, list[str]] = {}
    for name in names:
        by_basename.setdefault(PurePosixPath(name).name, []).append(name)
    districts = {
        d.fed_code: d for d in District.objects.filter(representation_order=representation_order)
    }
    provinces = {district.province_code for district in districts.values()}
    rows: list[_Row] = []
    errors: list[RowError] = []
    for number, record in enumerate(reader, start=2):
        values = {key: (value or "").strip() for key, value in record.items() if key}
        filename = values.get("filename", "")
        problems: list[str] = []
        member = filename if filename in names else None
        if member is None and len(by_basename.get(filename, [])) == 1:
            member = by_basename[filename][0]
        if not filename:
            problems.append("filename is empty")
        elif member is None:
            problems.append("file not found in the archive")
        kind = values.get("kind", "")
        if kind not in Kind.values:
            problems.append(f"unknown kind {kind!r} (expected one of {', '.join(Kind.values)})")
        fed_code = values.get("fed_code", "")
        province_code = values.get("province_code", "").upper()
        district = None
        if kind in DISTRICT_KINDS:
            district = districts.get(fed_code)
            if not fed_code:
                problems.append(f"{kind} needs a fed_code")
            elif district is None:
                problems.append(f"no district {fed_code!r} in the {representation_order} representation order")
            elif province_code and province_code != district.province_code:
                problems.append(f"province_code {province_code} does not match district {fed_code} ({district.province_code})")
            province_code = ""
        elif kind in Kind.values:
            if fed_code:
                problems.append(f"{kind} takes no fed_code")
            problems.extend(slot_errors(kind, None, province_code).values())
            if kind == Kind.PROVINCIAL_LANDMARK and provinces and province_code and province_code not in provinces:
                problems.append(f"unknown province_code {province_code!r}")
        if not values.get("place_name_en"):
            problems.append("place_name_en is empty")
        if member is not None:
            problem = _image_problem(_read(bundle, member))  # its declared size was checked above
            if problem:
                problems.append(problem)
        if problems:
            errors.extend(RowError(number, filename, problem) for problem in problems)
            continue
        rows.append(_Row(number, member or "", kind, district, province_code,
                         values["place_name_en"], values.get("place_name_fr", "")))
    if not rows and not errors:
        errors.append(RowError(1, manifest_name, "The manifest has no rows."))
    return rows, errors, bundle


def import_zip(archive: IO[bytes], *, representation_order: str, uploaded_by: Any = None,
               generate: bool = False) -> BulkReport:
    """Import every row of the archive's manifest, or nothing when any row has a problem."""
    from . import services

    rows, errors, bundle = check_archive(archive, representation_order)
    report = BulkReport(errors=errors)
    if errors or bundle is None:
        return report
    user = uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            for row in rows:
                source = SourcePhoto(
                    kind=row.kind, district=row.district, province_code=row.province_code,
                    place_name_en=row.place_name_en, place_name_fr=row.place_name_fr,
                    origin=SourcePhoto.Origin.BULK, uploaded_by=user,
                )
                # Stored as re-encoded by the check, under the detected format's extension.
                photo = clean_photo(_read(bundle, row.member))
                source.image.save(photo.filename(row.member), ContentFile(photo.content), save=False)
                source.save()
                report.created.append(source)
                if generate:
                    services.queue_stimulus(source)
    except (BrokenArchive, PhotoError) as error:
        report.created.clear()
        report.errors.append(RowError(0, "", str(error)))
    return report
