"""Loading the House of Commons' list of current members onto the districts of a representation order.

The list is the CSV export of https://www.ourcommons.ca/Members/en/search ("Honorific Title",
"First Name", "Last Name", "Constituency", "Province / Territory", "Political Affiliation",
"Start Date", "End Date"); other files work with a field mapping. Constituencies are matched to
loaded districts by name, English or French, ignoring case, accents, apostrophes and the
dash spelling ("—", "–", "--", "-"): exact after that normalization, never a nearest guess.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from studyserver.geo.loaders import DistrictSourceError, clean_name, local_copy
from studyserver.geo.models import District
from studyserver.geo.services import province_name

from .models import Representative

Progress = Callable[[str], None]

# Our field → the House of Commons column; "email" and "salutation" are optional.
HOC_COLUMNS = {
    "honorific": "Honorific Title",
    "first_name": "First Name",
    "last_name": "Last Name",
    "constituency": "Constituency",
    "province": "Province / Territory",
    "party": "Political Affiliation",
    "start_date": "Start Date",
    "end_date": "End Date",
    "email": "Email",
    "salutation": "Salutation",
}
REQUIRED_FIELDS = ("first_name", "last_name", "constituency")
# Other spellings of the optional columns, tried when the default is absent.
ALIASES = {
    "email": ("E-mail", "Email Address", "E-mail Address", "Courriel"),
    "salutation": ("Gender", "Title"),
}
SALUTATIONS = {
    "ms": Representative.Salutation.MS, "ms.": Representative.Salutation.MS,
    "mrs": Representative.Salutation.MS, "mrs.": Representative.Salutation.MS,
    "mme": Representative.Salutation.MS, "madame": Representative.Salutation.MS,
    "f": Representative.Salutation.MS, "female": Representative.Salutation.MS,
    "woman": Representative.Salutation.MS,
    "mr": Representative.Salutation.MR, "mr.": Representative.Salutation.MR,
    "m.": Representative.Salutation.MR, "monsieur": Representative.Salutation.MR,
    "m": Representative.Salutation.MR, "male": Representative.Salutation.MR,
    "man": Representative.Salutation.MR,
}
# Below this share of the order's districts matched, a load is refused unless partial loads are
# allowed: a wrong or truncated file must not vacate hundreds of seats.
MIN_SHARE_FOR_FULL_LOAD = 0.5


class RosterError(ValueError):
    """The roster cannot be read or does not fit the districts (the message says why; nothing stored)."""


@dataclass(frozen=True)
class RosterRow:
    line: int
    honorific: str
    first_name: str
    last_name: str
    constituency: str
    province: str
    party: str
    start_date: date | None
    email: str
    salutation: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def describe(self) -> str:
        return f"line {self.line}: {self.full_name or '(no name)'} — {self.constituency!r}"


@dataclass
class Roster:
    rows: list[RosterRow]
    former: int = 0  # rows with an end date: not current members
    problems: list[str] = field(default_factory=list)  # rows skipped, with why


def district_key(name: str) -> str:
    """A name reduced to what identifies it: "Laurier—Sainte-Marie" == "laurier--sainte-marie"."""
    text = unicodedata.normalize("NFKD", clean_name(name)).casefold()
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = re.sub(r"[’'`´]", "", text)  # "L'Islet" / "L’Islet" / "LIslet"
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


# --- reading ---------------------------------------------------------------------------------------


# The House of Commons' list of 343 members is ≈100 KB: anything fifty times that is not a roster.
MAX_ROSTER_BYTES = 5_000_000


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError("the file is neither UTF-8 nor Windows-1252 text")


def _columns(header: list[str], field_map: dict[str, str]) -> dict[str, str]:
    present = {name.strip(): name for name in header}
    columns: dict[str, str] = {}
    for our, default in HOC_COLUMNS.items():
        wanted = field_map.get(our)
        if wanted is not None:
            if wanted not in present:
                raise RosterError(f"column {wanted!r} (mapped to {our}) is not in the file; "
                                  f"its columns are: {', '.join(present) or '(none)'}")
            columns[our] = present[wanted]
            continue
        for candidate in (default, *ALIASES.get(our, ())):
            match = next((present[name] for name in present if name.casefold() == candidate.casefold()), None)
            if match is not None:
                columns[our] = match
                break
    missing = [HOC_COLUMNS[name] for name in REQUIRED_FIELDS if name not in columns]
    if missing:
        raise RosterError(
            f"missing column(s) {', '.join(repr(m) for m in missing)}; the file's columns are: "
            f"{', '.join(present) or '(none)'}. Map other names with --field NAME=COLUMN "
            f"(NAME in {', '.join(HOC_COLUMNS)})."
        )
    return columns


def parse_date(value: str) -> date | None:
    """The House of Commons writes dates as ISO, sometimes with a time; others write M/D/YYYY."""
    text = value.strip()
    if not text:
        return None
    match = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if match:
        return date(*map(int, match.groups()))
    for pattern in ("%m/%d/%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text.split()[0], pattern).date()
        except ValueError:
            continue
    raise ValueError(f"unrecognized date {value!r}")


def parse_roster(text: str, field_map: dict[str, str] | None = None) -> Roster:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise RosterError("the file is empty (no header row)")
    columns = _columns(list(reader.fieldnames), dict(field_map or {}))
    roster = Roster(rows=[])

    def cell(record: dict, name: str) -> str:
        column = columns.get(name)
        return clean_name(record.get(column) or "") if column else ""

    for line, record in enumerate(reader, start=2):
        if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
            continue
        try:
            start = parse_date(cell(record, "start_date"))
            end = parse_date(cell(record, "end_date"))
        except ValueError as error:
            roster.problems.append(f"line {line}: {error}; row skipped")
            continue
        if end is not None and end <= timezone.localdate():
            roster.former += 1
            continue
        email = cell(record, "email")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                roster.problems.append(f"line {line}: e-mail {email!r} is not valid; kept without it")
                email = ""
        raw_salutation = cell(record, "salutation")
        salutation = SALUTATIONS.get(raw_salutation.casefold(), Representative.Salutation.UNKNOWN)
        if raw_salutation and not salutation:
            roster.problems.append(f"line {line}: salutation {raw_salutation!r} not recognized; "
                                   "the neutral salutation is used")
        row = RosterRow(
            line=line, honorific=cell(record, "honorific"), first_name=cell(record, "first_name"),
            last_name=cell(record, "last_name"), constituency=cell(record, "constituency"),
            province=cell(record, "province"), party=cell(record, "party"), start_date=start,
            email=email, salutation=salutation,
        )
        if not row.constituency or not (row.first_name or row.last_name):
            roster.problems.append(f"line {line}: no constituency or no name; row skipped")
            continue
        roster.rows.append(row)
    return roster


def read_roster(source: str, field_map: dict[str, str] | None = None, progress: Progress | None = None) -> Roster:
    """Read a roster CSV from a path or an http(s) URL."""
    try:
        with local_copy(source, progress or (lambda _m: None)) as path:
            if path.is_dir():
                raise RosterError(f"{path} is a folder; give the CSV file")
            if path.stat().st_size > MAX_ROSTER_BYTES:  # refused unread, like any file a researcher loads
                raise RosterError(f"the file is {path.stat().st_size / 1e6:,.1f} MB: a roster of members is "
                                  f"at most {MAX_ROSTER_BYTES // 1_000_000} MB (the House's list is ≈0.1 MB)")
            raw = path.read_bytes()
    except DistrictSourceError as error:
        raise RosterError(str(error)) from None
    return parse_roster(_decode(raw), field_map)


# --- matching --------------------------------------------------------------------------------------


@dataclass
class Matching:
    by_district: dict[int, tuple[District, RosterRow]] = field(default_factory=dict)
    unmatched: list[RosterRow] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # two members for one seat, or one name for two
    disputed: set[int] = field(default_factory=set)  # seats listed more than once: left as they were


def match_districts(rows: Iterable[RosterRow], districts: Iterable[District]) -> Matching:
    index: dict[str, set[District]] = defaultdict(set)
    for district in districts:
        for name in (district.name_en, district.name_fr):
            if name:
                index[district_key(name)].add(district)
    matching = Matching()
    claimed: dict[int, list[RosterRow]] = defaultdict(list)
    found: dict[int, District] = {}
    for row in rows:
        candidates = index.get(district_key(row.constituency), set())
        if len(candidates) > 1 and row.province:
            # Same name in two provinces: the row's province decides, when it names one of them.
            same = {d for d in candidates if district_key(province_name(d.province_code, "en")) == district_key(row.province)
                    or district_key(province_name(d.province_code, "fr")) == district_key(row.province)}
            candidates = same or candidates
        if not candidates:
            matching.unmatched.append(row)
        elif len(candidates) > 1:
            names = ", ".join(sorted(f"{d.name_en} ({d.fed_code})" for d in candidates))
            matching.conflicts.append(f"{row.describe()}: matches several districts ({names}); not loaded")
        else:
            district = next(iter(candidates))
            claimed[district.pk].append(row)
            found[district.pk] = district
    for pk, claimants in claimed.items():
        district = found[pk]
        if len(claimants) > 1:
            who = "; ".join(row.describe() for row in claimants)
            matching.conflicts.append(f"{district.name_en} ({district.fed_code}) is listed {len(claimants)} times "
                                      f"({who}); seat left as it was")
            matching.disputed.add(pk)
            continue
        matching.by_district[pk] = (district, claimants[0])
    return matching


# --- storing ---------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    representation_order: str
    districts: int
    rows: int
    former_rows: int
    new: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    vacated: list[str] = field(default_factory=list)
    vacant: list[str] = field(default_factory=list)  # every seat without a current member after the load
    unmatched: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False
    partial: bool = False


UPDATABLE = ("honorific", "salutation", "party", "province", "email", "start_date", "constituency_in_file")


def load_roster(roster: Roster, representation_order: str, *, source: str, allow_partial: bool = False,
                dry_run: bool = False, progress: Progress | None = None) -> LoadReport:
    """Make the roster's members the current members of their districts; idempotent.

    A seat held by someone else now ends the previous member's term (kept as history); a seat
    absent from a full list is vacated; with ``allow_partial`` absent seats are left as they were.
    """
    say = progress or (lambda _m: None)
    districts = list(District.objects.filter(representation_order=representation_order))
    if not districts:
        raise RosterError(f"no districts of the {representation_order} representation order are loaded "
                          "(run load_districts first)")
    matching = match_districts(roster.rows, districts)
    report = LoadReport(
        representation_order=representation_order, districts=len(districts), rows=len(roster.rows),
        former_rows=roster.former, problems=list(roster.problems), conflicts=list(matching.conflicts),
        unmatched=[row.describe() for row in matching.unmatched], dry_run=dry_run, partial=allow_partial,
    )
    say(f"{len(roster.rows)} current members in the file, {len(matching.by_district)} matched to "
        f"{len(districts)} districts of the {representation_order} order")
    if not allow_partial and len(matching.by_district) < MIN_SHARE_FOR_FULL_LOAD * len(districts):
        raise RosterError(
            f"only {len(matching.by_district)} of the {len(districts)} districts of the "
            f"{representation_order} order matched a member: is this the right file and order? "
            "Nothing was stored. (--allow-partial loads it anyway and leaves the other seats as they are.)"
        )
    now = timezone.now()
    with transaction.atomic():
        current = {rep.district_id: rep for rep in
                   Representative.objects.select_for_update().filter(district__in=districts, is_current=True)}
        for district in sorted(districts, key=lambda d: d.fed_code):
            label = f"{district.name_en} ({district.fed_code})"
            held = current.get(district.pk)
            if district.pk in matching.disputed:
                if held is None:
                    report.vacant.append(label)
                continue
            if district.pk not in matching.by_district:
                if held is not None and not allow_partial:
                    report.vacated.append(f"{label}: {held.full_name} no longer listed")
                    if not dry_run:
                        held.is_current = False
                        held.replaced_at = now
                        held.save(update_fields=["is_current", "replaced_at", "updated_at"])
                    held = None
                if held is None:
                    report.vacant.append(label)
                continue
            _district, row = matching.by_district[district.pk]
            values = {"honorific": row.honorific, "salutation": row.salutation, "party": row.party,
                      "province": row.province, "email": row.email, "start_date": row.start_date,
                      "constituency_in_file": row.constituency}
            if held is not None and held.same_person(row.first_name, row.last_name):
                changed = [name for name in UPDATABLE if getattr(held, name) != values[name]]
                if changed:
                    report.updated.append(f"{label}: {held.full_name} ({', '.join(changed)})")
                    if not dry_run:
                        for name in changed:
                            setattr(held, name, values[name])
                        held.source = source
                        held.save()
                else:
                    report.unchanged += 1
                continue
            if held is not None:
                report.replaced.append(f"{label}: {held.full_name} → {row.full_name}")
            else:
                report.new.append(f"{label}: {row.full_name}")
            if dry_run:
                continue
            if held is not None:
                held.is_current = False
                held.replaced_at = now
                held.save(update_fields=["is_current", "replaced_at", "updated_at"])
            # The same person back in the same seat (a file reloaded after a wrong one, a member
            # re-elected after a vacancy) gets their row back rather than a duplicate.
            previous = next((rep for rep in Representative.objects.filter(district=district, is_current=False)
                             .order_by("-current_since")
                             if rep.same_person(row.first_name, row.last_name)), None)
            if previous is not None:
                for name, value in values.items():
                    setattr(previous, name, value)
                previous.is_current, previous.replaced_at, previous.source = True, None, source
                previous.save()
            else:
                Representative.objects.create(district=district, first_name=row.first_name, last_name=row.last_name,
                                              is_current=True, current_since=now, source=source, **values)
        if dry_run:
            transaction.set_rollback(True)
    say(f"{len(report.new)} new, {len(report.replaced)} replaced, {len(report.updated)} updated, "
        f"{report.unchanged} unchanged, {len(report.vacated)} vacated")
    return report
