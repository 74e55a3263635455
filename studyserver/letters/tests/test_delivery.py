"""The delivery export: valid PDFs holding each signer's name, a manifest that matches the database,
the same permission and log as a personal-data export."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.utils import timezone
from pypdf import PdfReader

from studyserver.exports.models import ExportLog
from studyserver.exports.tests.factories import make_participant, make_study
from studyserver.geo.models import District
from studyserver.letters.addressing import address_letter
from studyserver.letters.delivery import MANIFEST_COLUMNS, signed_submissions, spreadsheet_safe
from studyserver.letters.models import Representative
from studyserver.survey import flow

from .helpers import make_districts, make_member

pytestmark = pytest.mark.django_db
SIGNED = {"letter_want": {"letter_want": 1}, "letter_sign": {"letter_signed": 1}}


def signer(study, district, name: str, *, language: str = "en", signed: bool = True, addressed: bool = True,
           state: str = "completed"):
    pages = {"letter_want": {"letter_want": 1}, "letter_sign": {"letter_signed": 1 if signed else 0}}
    participant = make_participant(study, district=district, pages=pages, language=language, state=state,
                                   personal={"signature_name": name})
    if addressed:
        address_letter(participant, language)
    return participant


@pytest.fixture
def letters(db):
    """Signed letters in two ridings, one seat changing hands, and letters that must not be exported."""
    study = make_study("letters-study")
    districts = make_districts()
    laurier, yukon, calgary = districts["24001"], districts["60001"], districts["48001"]
    cote = make_member(laurier, "Éloïse", "Côté-Tremblay", salutation="ms", email="eloise.cote@parl.gc.ca")
    hanley = make_member(yukon, "Brendan", "Hanley", party="Liberal")
    signer(study, laurier, "Ann Example")
    signer(study, laurier, "Zoé Bélanger-Œuvray", language="fr")
    signer(study, laurier, "=HYPERLINK(\"http://x\")")
    signer(study, yukon, "Bob Yukoner")
    # A by-election in Yukon: the earlier letter stays Hanley's, later ones go to White.
    hanley.is_current, hanley.replaced_at = False, timezone.now()
    hanley.save()
    white = make_member(yukon, "Kate", "White", email="kate.white@parl.gc.ca")
    signer(study, yukon, "Carol After")
    signer(study, calgary, "Dan Vacant")  # no member: grouped under the riding
    # Not exported: unsigned, a signature box without a name, withdrawn, another study.
    signer(study, laurier, "Not Signed", signed=False)
    signer(study, laurier, "   ")
    withdrawn = signer(study, laurier, "Gone Away")
    flow.withdraw(withdrawn)
    signer(make_study("other"), laurier, "Other Study")
    return study, {"cote": cote, "hanley": hanley, "white": white}


@pytest.fixture
def privileged(db):
    user = User.objects.create_user("privileged", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    return user


def export(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    out = StringIO()
    call_command("export_letters", "--study", "letters-study", "--out", str(tmp_path / "out"), *extra, stdout=out)
    return tmp_path / "out", out.getvalue()


def pdf_pages(content: bytes) -> list[str]:
    """Each page's text, with the PDF's line wrapping undone."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


def read_manifest(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_command_writes_one_pdf_per_member_and_a_manifest_matching_the_database(letters, tmp_path):
    study, members = letters
    folder, output = export(tmp_path)
    assert "Wrote 6 letters in 4 PDFs and manifest.csv" in output
    manifest = read_manifest((folder / "manifest.csv").read_bytes())
    assert list(manifest[0]) == MANIFEST_COLUMNS
    by_file = {row["file"]: row for row in manifest}
    assert sorted(by_file) == sorted(p.name for p in folder.glob("*.pdf"))
    assert sum(int(row["letters"]) for row in manifest) == signed_submissions(study).count() == 6
    laurier = by_file["24001-eloise-cote-tremblay.pdf"]
    assert (laurier["member"], laurier["riding"], laurier["email"], laurier["letters"]) == (
        "Éloïse Côté-Tremblay", "Laurier—Sainte-Marie", "eloise.cote@parl.gc.ca", "3")
    assert by_file["60001-kate-white.pdf"]["letters"] == "1"
    assert by_file["60001-brendan-hanley.pdf"]["letters"] == "1"
    assert "no longer the member" in by_file["60001-brendan-hanley.pdf"]["note"]
    assert "now held by Kate White" in by_file["60001-brendan-hanley.pdf"]["note"]
    vacant = by_file["48001-riding.pdf"]
    assert (vacant["member"], vacant["letters"]) == ("", "1") and "seat vacant" in vacant["note"]

    pages = pdf_pages((folder / "24001-eloise-cote-tremblay.pdf").read_bytes())
    assert len(pages) == 3  # each letter on its own page
    text = "\n".join(pages)
    for name in ("Ann Example", "Zoé Bélanger-Œuvray", "=HYPERLINK(\"http://x\")"):
        assert name in text
    assert "Dear Ms. Éloïse Côté-Tremblay, Member of Parliament for Laurier—Sainte-Marie," in pages[0]
    assert "Madame Éloïse Côté-Tremblay, députée de Laurier—Sainte-Marie," in pages[1]
    assert "Signed online on March 2, 2026, Laurier—Sainte-Marie" in pages[0]
    assert "Signée en ligne le 2 mars 2026" in pages[1]
    for excluded in ("Not Signed", "Gone Away", "Other Study"):
        assert all(excluded not in "".join(pdf_pages(p.read_bytes())) for p in folder.glob("*.pdf"))
    assert "Brendan Hanley" in "".join(pdf_pages((folder / "60001-brendan-hanley.pdf").read_bytes()))
    assert "To the Member of Parliament for Calgary Centre," in pdf_pages((folder / "48001-riding.pdf").read_bytes())[0]

    log = ExportLog.objects.get()
    assert (log.format, log.channel, log.row_count, log.included_personal_data) == ("letters", "command", 6, True)
    assert log.username.startswith("(shell:")


def test_manifest_cells_never_start_a_formula(letters, tmp_path):
    members = letters[1]
    Representative.objects.filter(pk=members["cote"].pk).update(first_name="=cmd|' /C calc'!A0", party="+1")
    folder, _ = export(tmp_path)
    row = next(r for r in read_manifest((folder / "manifest.csv").read_bytes()) if r["fed_code"] == "24001")
    assert row["member"].startswith("'=cmd") and row["party"] == "'+1"
    assert [spreadsheet_safe(v) for v in ("-2", "@x", "\tx", "\rx", "ok", None)] == [
        "'-2", "'@x", "'\tx", "'\rx", "ok", ""]


def test_names_the_font_cannot_draw_are_flagged_in_the_manifest(letters, tmp_path):
    study, _ = letters
    signer(study, Representative.objects.get(last_name="White").district, "王小明")
    folder, _ = export(tmp_path)
    row = next(r for r in read_manifest((folder / "manifest.csv").read_bytes()) if r["file"] == "60001-kate-white.pdf")
    assert row["letters"] == "2" and "1 signer name(s) use characters the PDF font lacks" in row["note"]
    laurier = next(r for r in read_manifest((folder / "manifest.csv").read_bytes()) if r["fed_code"] == "24001")
    assert "font lacks" not in laurier["note"]  # French accents and Œ are drawn


def test_letters_signed_before_they_were_recorded_are_rebuilt_to_the_riding(letters, tmp_path):
    study, _ = letters
    district = District.objects.create(representation_order="2023", fed_code="35999", name_en="Ottawa South",
                                       name_fr="Ottawa-Sud", province_code="ON")
    signer(study, district, "Early Bird", language="fr", addressed=False)
    folder, _ = export(tmp_path)
    pages = pdf_pages((folder / "35999-riding.pdf").read_bytes())
    assert "Early Bird" in pages[0] and "À la ou au député d'Ottawa-Sud," in pages[0]


def test_french_letters_elide_de_before_a_vowel_in_the_pdf(letters, tmp_path):
    study, _ = letters
    egmont = District.objects.create(representation_order="2023", fed_code="11002", name_en="Egmont",
                                     name_fr="Egmont", province_code="PE")
    make_member(egmont, "Bobby", "Morrissey")
    signer(study, egmont, "Île Signer", language="fr")
    signer(study, egmont, "English Signer")
    folder, _ = export(tmp_path)
    french, english = pdf_pages((folder / "11002-bobby-morrissey.pdf").read_bytes())
    assert "À Bobby Morrissey, député(e) d'Egmont," in french and "de Egmont" not in french
    assert "Dear Bobby Morrissey, Member of Parliament for Egmont," in english


def test_command_refuses_bad_input_clearly_and_logs_nothing(letters, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.pdf").write_bytes(b"x")
    with pytest.raises(CommandError, match="not empty"):
        export(tmp_path)
    with pytest.raises(CommandError, match="No study 'nope'"):
        call_command("export_letters", "--study", "nope", "--out", str(tmp_path / "new"))
    User.objects.create_user("nobody", is_staff=True)
    with pytest.raises(CommandError, match="lacks the permission 'survey.export_personal_data'"):
        call_command("export_letters", "--study", "letters-study", "--out", str(tmp_path / "new"), "--user", "nobody")
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("export_letters", "--study", "letters-study", "--out", str(tmp_path / "new"), "--user", "ghost")
    assert not ExportLog.objects.exists()
    assert not any((tmp_path / "new").glob("*.pdf"))


def test_command_with_a_permitted_user_logs_that_user(letters, tmp_path, privileged):
    export(tmp_path, "--user", "privileged")
    log = ExportLog.objects.get()
    assert log.user == privileged and log.username == "privileged"


def test_admin_download_is_one_zip_and_needs_the_personal_data_permission(letters, client, privileged):
    study, _ = letters
    url = "/admin/letters/letterdelivery/"
    staff = User.objects.create_user("staff", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert client.post(url, {"study": study.pk}).status_code == 403
    assert "letterdelivery" not in client.get("/admin/").content.decode()
    assert not ExportLog.objects.exists()

    client.force_login(privileged)
    page = client.get(url)
    assert page.status_code == 200 and "letters-study" in page.content.decode()
    assert client.post(url, {"study": "999999"}).status_code == 400
    response = client.post(url, {"study": study.pk})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert re.match(r'attachment; filename="letters-study-letters-\d{8}-\d{4}-E[SD]T\.zip"', response["Content-Disposition"])
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert "manifest.csv" in names and len(names) == 5
    manifest = read_manifest(archive.read("manifest.csv"))
    assert sum(int(row["letters"]) for row in manifest) == 6
    for row in manifest:
        assert len(pdf_pages(archive.read(row["file"]))) == int(row["letters"])
    log = ExportLog.objects.get()
    assert (log.user, log.channel, log.format, log.row_count, log.included_personal_data) == (
        privileged, "admin", "letters", 6, True)


def test_a_study_without_signed_letters_exports_an_empty_manifest(db, tmp_path):
    make_study("letters-study")
    folder, output = export(tmp_path)
    assert "Wrote 0 letters in 0 PDFs" in output
    assert read_manifest((folder / "manifest.csv").read_bytes()) == []
