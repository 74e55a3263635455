"""A few districts with the spellings that make matching hard, and roster files in the House of
Commons layout (the CSV export of ourcommons.ca's member search)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from django.utils import timezone

from studyserver.geo.models import District
from studyserver.letters.models import Representative

HOC_HEADER = ["Honorific Title", "First Name", "Last Name", "Constituency", "Province / Territory",
              "Political Affiliation", "Start Date", "End Date"]
ORDER = "2023"
# fed_code, name_en, name_fr, province: the district files' spellings ("--", plain apostrophes).
DISTRICTS = [
    ("24001", "Laurier--Sainte-Marie", "Laurier--Sainte-Marie", "QC"),
    ("24002", "Montmagny--L'Islet--Kamouraska--Rivière-du-Loup",
     "Montmagny--L'Islet--Kamouraska--Rivière-du-Loup", "QC"),
    ("35001", "Ottawa Centre", "Ottawa-Centre", "ON"),
    ("10001", "St. John's East", "St. John's-Est", "NL"),
    ("60001", "Yukon", "Yukon", "YT"),
    ("48001", "Calgary Centre", "Calgary-Centre", "AB"),
]
# The House of Commons' spellings: em dashes, curly apostrophes, French names for some ridings.
MEMBERS = [
    ["", "Éloïse", "Côté-Tremblay", "Laurier—Sainte-Marie", "Quebec", "Bloc Québécois", "2025-04-28 12:00:00 AM", ""],
    ["Hon.", "Jean-François", "Lévesque", "Montmagny—L’Islet—Kamouraska—Riviere-du-Loup", "Quebec", "Conservative",
     "2025-04-28", ""],
    ["", "Yasir", "Naqvi", "Ottawa-Centre", "Ontario", "Liberal", "2025-04-28", ""],
    ["Right Hon.", "Joanne", "Thompson", "St. John’s East", "Newfoundland and Labrador", "Liberal", "2025-04-28", ""],
    ["", "Brendan", "Hanley", "Yukon", "Yukon", "Liberal", "2025-04-28", ""],
    # Not a district of the order: listed, never guessed.
    ["", "Nadia", "Nowhere", "Atlantis—Lost City", "Ontario", "Independent", "2025-04-28", ""],
    # A former member (an end date): not current.
    ["", "Old", "Member", "Calgary Centre", "Alberta", "Conservative", "2021-09-20", "2025-03-23"],
]


def make_districts(order: str = ORDER) -> dict[str, District]:
    return {code: District.objects.create(representation_order=order, fed_code=code, name_en=en, name_fr=fr,
                                          province_code=province)
            for code, en, fr, province in DISTRICTS}


def write_roster(path: Path, rows: Iterable[list[str]], header: list[str] | None = None,
                 encoding: str = "utf-8-sig") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header or HOC_HEADER)
        writer.writerows(rows)
    return path


def make_member(district: District, first: str = "Jane", last: str = "Doe", **fields) -> Representative:
    return Representative.objects.create(district=district, first_name=first, last_name=last,
                                         current_since=timezone.now(), **fields)
