"""Loading the House of Commons list: matching in either language, vacancies, by-elections, history."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from studyserver.letters.models import AddressedLetter, Representative
from studyserver.letters.roster import (
    RosterError,
    district_key,
    load_roster,
    parse_roster,
    read_roster,
)

from .helpers import HOC_HEADER, MEMBERS, ORDER, make_districts, write_roster

pytestmark = pytest.mark.django_db


def load(path: Path, *extra: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("load_representatives", str(path), "--representation-order", ORDER, *extra, stdout=out)
    return out.getvalue()


def current(fed_code: str) -> Representative | None:
    return Representative.objects.filter(district__fed_code=fed_code, is_current=True).first()


def test_district_key_ignores_dashes_accents_case_and_apostrophes():
    assert district_key("Laurier—Sainte-Marie") == district_key("Laurier--Sainte-Marie") == "laurier sainte marie"
    assert district_key("Montmagny—L’Islet—Kamouraska—Riviere-du-Loup") == district_key(
        "Montmagny--L'Islet--Kamouraska--Rivière-du-Loup")
    assert district_key("Île-des-S\x9curs") == district_key("ÎLE-DES-SŒURS") == "ile des sœurs"
    assert district_key("Ottawa Centre") != district_key("Ottawa-Vanier")


def test_every_2023_district_name_in_either_language_and_hoc_spelling_is_unambiguous():
    """The real 343 names: with em dashes instead of "--", each still finds exactly its district."""
    path = Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.csv"
    with open(path, encoding="utf-8-sig") as handle:
        districts = list(csv.DictReader(handle))
    keys: dict[str, set[str]] = {}
    for row in districts:
        for name in (row["name_en"], row["name_fr"]):
            keys.setdefault(district_key(name), set()).add(row["fed_code"])
    for row in districts:
        for name in (row["name_en"], row["name_fr"]):
            assert keys[district_key(name.replace("--", "—"))] == {row["fed_code"]}, name


def test_a_full_house_in_the_house_of_commons_spelling_fills_every_2023_seat(tmp_path):
    from studyserver.geo.models import District

    with open(Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.csv", encoding="utf-8-sig") as handle:
        districts = list(csv.DictReader(handle))
    District.objects.bulk_create(District(representation_order="2023", fed_code=row["fed_code"], name_en=row["name_en"],
                                          name_fr=row["name_fr"], province_code=row["province_code"])
                                 for row in districts)
    # Half the rows use the French name, all with em dashes and curly apostrophes.
    rows = [["", f"First{i}", f"Last{i}", row["name_fr" if i % 2 else "name_en"].replace("--", "—").replace("'", "’"),
             "", "", "2025-04-28", ""] for i, row in enumerate(districts)]
    output = load(write_roster(tmp_path / "house.csv", rows))
    assert f"{len(districts)} new" in output and "0 of 343 seats vacant, 0 rows unmatched" in output
    assert Representative.objects.filter(is_current=True).count() == len(districts) == 343


def test_load_matches_either_language_and_lists_unmatched_and_vacant(tmp_path):
    make_districts()
    output = load(write_roster(tmp_path / "members.csv", MEMBERS))
    assert current("24001").full_name == "Éloïse Côté-Tremblay"
    assert current("24002").honorific == "Hon." and current("24002").constituency_in_file.startswith("Montmagny—L’Islet")
    assert current("35001").last_name == "Naqvi"  # matched on the French name "Ottawa-Centre"
    assert current("10001").honorific == "Right Hon." and current("10001").start_date == date(2025, 4, 28)
    assert current("48001") is None  # only a former member listed: vacant
    assert "Atlantis—Lost City" in output and "Rows matching no district (not loaded): 1" in output
    assert "Vacant seats (letters go to the riding, unnamed): 1" in output and "Calgary Centre (48001)" in output
    assert "5 new" in output and "1 former skipped" in output
    assert Representative.objects.count() == 5


def test_a_second_load_of_the_same_file_changes_nothing(tmp_path):
    make_districts()
    path = write_roster(tmp_path / "members.csv", MEMBERS)
    load(path)
    before = list(Representative.objects.order_by("pk").values())
    output = load(path)
    assert "0 new, 0 replaced, 0 updated, 5 unchanged" in output
    assert list(Representative.objects.order_by("pk").values()) == before


def test_a_by_election_replaces_the_member_and_keeps_who_a_letter_was_addressed_to(tmp_path):
    from studyserver.exports.tests.factories import make_participant, make_study

    districts = make_districts()
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    before = current("60001")
    participant = make_participant(make_study(), district=districts["60001"])
    AddressedLetter.objects.create(participant=participant, district=districts["60001"], representative=before,
                                   language="en", opening="Dear Brendan Hanley,", body="…",
                                   addressed_at=before.current_since)
    after_by_election = [row if row[3] != "Yukon" else
                         ["", "Kate", "White", "Yukon", "Yukon", "New Democratic Party", "2026-06-15", ""]
                         for row in MEMBERS]
    output = load(write_roster(tmp_path / "after.csv", after_by_election))
    assert "Yukon (60001): Brendan Hanley → Kate White" in output and "1 replaced" in output
    assert current("60001").full_name == "Kate White"
    before.refresh_from_db()
    assert not before.is_current and before.replaced_at is not None
    assert AddressedLetter.objects.get(participant=participant).representative == before
    assert Representative.objects.filter(district=districts["60001"]).count() == 2


def test_a_seat_no_longer_listed_is_vacated_and_listed(tmp_path):
    make_districts()
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    without_ottawa = [row for row in MEMBERS if row[2] != "Naqvi"]
    output = load(write_roster(tmp_path / "later.csv", without_ottawa))
    assert current("35001") is None and "Ottawa Centre (35001): Yasir Naqvi no longer listed" in output
    assert Representative.objects.get(last_name="Naqvi").replaced_at is not None
    # Listed again (the wrong file is replaced by the right one): the same row comes back, no duplicate.
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    assert current("35001").last_name == "Naqvi" and Representative.objects.filter(last_name="Naqvi").count() == 1


def test_a_file_matching_few_seats_is_refused_unless_partial(tmp_path):
    make_districts()
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    one = write_roster(tmp_path / "one.csv", [["", "Kate", "White", "Yukon", "Yukon", "NDP", "2026-06-15", ""]])
    with pytest.raises(CommandError, match="only 1 of the 6 districts .* Nothing was stored"):
        load(one)
    assert current("60001").last_name == "Hanley" and current("35001") is not None
    output = load(one, "--allow-partial")
    assert current("60001").last_name == "White" and current("35001").last_name == "Naqvi"
    assert "1 replaced" in output


def test_a_partial_load_counts_the_vacant_seats_instead_of_listing_hundreds(tmp_path):
    from studyserver.geo.models import District

    District.objects.bulk_create(District(representation_order="2023", fed_code=str(35100 + i), name_en=f"Riding {i}",
                                          name_fr=f"Circonscription {i}", province_code="ON") for i in range(40))
    one = write_roster(tmp_path / "one.csv", [["", "Ann", "Lee", "Riding 0", "Riding 0", "NDP", "2026-06-15", ""]])
    output = load(one, "--allow-partial")
    assert "Vacant seats (letters go to the riding, unnamed): 39" in output
    vacant = re.compile(r"^  - Riding \d+ \(\d+\)$", re.MULTILINE)  # a new member's line names them
    assert len(vacant.findall(output)) == 10 and "… and 29 more (--verbosity 2 lists them all)" in output
    assert "39 of 40 seats vacant" in output
    everything = load(one, "--allow-partial", "--verbosity", "2")
    assert len(vacant.findall(everything)) == 39 and "more (--verbosity 2" not in everything


def test_dry_run_reports_and_stores_nothing(tmp_path):
    make_districts()
    output = load(write_roster(tmp_path / "members.csv", MEMBERS), "--dry-run")
    assert "DRY RUN, nothing stored" in output and "5 new" in output
    assert not Representative.objects.exists()


def test_field_mapping_email_and_salutation_columns(tmp_path):
    make_districts()
    header = ["Prénom", "Nom", "Circonscription", "Courriel", "Salutation", "Start Date"]
    rows = [["Éloïse", "Côté-Tremblay", "Laurier—Sainte-Marie", "eloise.cote@parl.gc.ca", "Mme", "2025-04-28"],
            ["Jean-François", "Lévesque", "Montmagny—L'Islet—Kamouraska—Rivière-du-Loup", "not an e-mail", "M.", ""],
            ["Yasir", "Naqvi", "Ottawa Centre", "", "Dr.", ""],
            ["Joanne", "Thompson", "St. John's East", "", "", ""]]
    path = write_roster(tmp_path / "autre.csv", rows, header=header, encoding="cp1252")
    with pytest.raises(CommandError, match=r"missing column\(s\) 'First Name', 'Last Name', 'Constituency'.*Prénom"):
        load(path)
    output = load(path, "--field", "first_name=Prénom", "--field", "last_name=Nom",
                  "--field", "constituency=Circonscription")
    assert current("24001").email == "eloise.cote@parl.gc.ca" and current("24001").salutation == "ms"
    assert current("24002").salutation == "mr" and current("24002").email == ""
    assert "e-mail 'not an e-mail' is not valid" in output and "salutation 'Dr.' not recognized" in output
    assert current("35001").salutation == "" and current("10001").salutation == ""
    with pytest.raises(CommandError, match="expected NAME=COLUMN"):
        load(path, "--field", "nickname=Nom")


def test_unreadable_sources_say_why(tmp_path):
    make_districts()
    with pytest.raises(CommandError, match="no such file"):
        load(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CommandError, match="empty"):
        load(tmp_path / "empty.csv")
    bad_date = parse_roster(",".join(HOC_HEADER) + "\n,A,B,Yukon,Yukon,X,someday,\n")
    assert not bad_date.rows and bad_date.problems == ["line 2: unrecognized date 'someday'; row skipped"]
    with pytest.raises(RosterError, match="no districts of the 1976 representation order are loaded"):
        load_roster(read_roster(str(write_roster(tmp_path / "m.csv", MEMBERS))), "1976", source="m.csv")


def test_two_rows_for_one_seat_are_a_conflict_not_a_guess(tmp_path):
    make_districts()
    rows = [*MEMBERS, ["", "Second", "Claimant", "Yukon", "Yukon", "Green", "2025-04-28", ""]]
    report = load_roster(read_roster(str(write_roster(tmp_path / "m.csv", rows))), ORDER, source="m.csv")
    assert current("60001") is None and "Yukon (60001)" in report.vacant
    assert any("listed 2 times" in conflict and "Claimant" in conflict for conflict in report.conflicts)
    # With a member already in the seat, a disputed seat is left as it was (not vacated).
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    report = load_roster(read_roster(str(tmp_path / "m.csv")), ORDER, source="m.csv")
    assert current("60001").last_name == "Hanley" and "Yukon (60001)" not in report.vacant


def test_a_re_elected_member_is_the_same_person_with_a_new_start_date(tmp_path):
    make_districts()
    load(write_roster(tmp_path / "members.csv", MEMBERS))
    hanley = current("60001")
    re_elected = [row if row[3] != "Yukon" else [*row[:6], "2029-10-22", ""] for row in MEMBERS]
    output = load(write_roster(tmp_path / "next.csv", re_elected))
    assert "Yukon (60001): Brendan Hanley (start_date)" in output and "0 replaced, 1 updated" in output
    assert current("60001").pk == hanley.pk and current("60001").start_date == date(2029, 10, 22)


def test_an_oversized_roster_is_refused_unread(tmp_path, monkeypatch):
    from studyserver.letters import roster

    path = write_roster(tmp_path / "m.csv", MEMBERS)
    monkeypatch.setattr(roster, "MAX_ROSTER_BYTES", path.stat().st_size - 1)
    monkeypatch.setattr(roster, "parse_roster", lambda *a: pytest.fail("an oversized file was parsed"))
    with pytest.raises(RosterError, match="a roster of members is at most"):
        read_roster(str(path))
