"""Two studies, two questionnaire versions, one database: every participant keeps the version they
started with, from the pages to the export and the codebook."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from studyserver.exports.codebook import build_codebook
from studyserver.exports.export import build_export, stata_value_labels, study_instruments
from studyserver.instrument.models import InstrumentVersion
from studyserver.instrument.versions import store_version
from studyserver.studies.models import StudyVersionChange

from .conftest import YUKON, Respondent, _errors, make_study

pytestmark = pytest.mark.django_db

V1_SOURCE = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
FR_V1 = "Quel est votre genre ?"
FR_V2 = "À quel genre vous identifiez-vous ?"


def revised(source: str = V1_SOURCE) -> str:
    """The pilot's revision: 'prefer not to say' recoded 99 → 9 in gender, the dwelling item
    removed, a new French wording of the gender question, a new version label."""
    start = source.index("      - code: dwelling")
    end = source.index("      - code: urbanicity")
    text = source[:start] + source[end:]
    gender = text.index("      - code: gender")
    education = text.index("      - code: education")
    block = text[gender:education].replace("{code: 99, en: Prefer not to say", "{code: 9, en: Prefer not to say")
    block = block.replace(FR_V1, FR_V2)
    text = text[:gender] + block + text[education:]
    return text.replace("version: floodlight-v1", "version: floodlight-v2", 1)


@pytest.fixture
def versions():
    v1, _ = store_version(V1_SOURCE, filename="floodlight-v1.yaml")
    v2, created = store_version(revised(), filename="floodlight-v2.yaml")
    assert created
    return v1, v2


def at_ses(study, panel_id: str, language: str = "en") -> Respondent:
    respondent = Respondent(study, panel_id=panel_id, language=language)
    assert respondent.enter().status_code == 200  # the consent page
    assert respondent.consent().status_code == 302
    assert respondent.post("postal", {"postal_code": YUKON}).status_code == 302
    assert respondent.current_step() == "ses"
    return respondent


def ses_answers(gender: int, dwelling: bool) -> dict[str, object]:
    data = {"birth_year": 1980, "gender": gender, "education": 6, "income": 4, "employment": 1, "tenure": 1,
            "urbanicity": 1, "years_in_district": 4, "home_language": 1}
    return {**data, "dwelling": 1} if dwelling else data


def test_two_studies_run_side_by_side_with_their_own_version(yukon, versions):
    v1, v2 = versions
    pilot = make_study(slug="pilot", questionnaire=v1)
    main = make_study(slug="main", questionnaire=v2)
    old = at_ses(pilot, "A-1", language="fr")
    new = at_ses(main, "B-1", language="fr")
    assert (old.participant.instrument_version, new.participant.instrument_version) == ("floodlight-v1", "floodlight-v2")
    assert old.participant.consent_version == v1.consent_version == pilot.consent_version
    assert new.participant.consent_version == v2.consent_version == v1.consent_version  # same consent text

    old_page, new_page = old.get("ses").content.decode(), new.get("ses").content.decode()
    assert FR_V1 in old_page and 'name="dwelling"' in old_page
    assert FR_V2 in new_page and 'name="dwelling"' not in new_page and FR_V1 not in new_page

    # Each version validates with its own codes.
    assert new.post("ses", ses_answers(99, dwelling=False)).status_code == 400
    assert old.post("ses", ses_answers(99, dwelling=True)).status_code == 302
    assert new.post("ses", ses_answers(9, dwelling=False)).status_code == 302

    pilot_rows, main_rows = build_export(pilot), build_export(main)
    assert pilot_rows.loc[0, "gender"] == 99 and pilot_rows.loc[0, "dwelling"] == 1
    assert main_rows.loc[0, "gender"] == 9 and "dwelling" not in main_rows.columns
    assert list(pilot_rows["instrument_version"]) == ["floodlight-v1"]
    assert list(main_rows["instrument_version"]) == ["floodlight-v2"]
    main_codebook = {row.variable: row for row in build_codebook(study=main)}
    assert "dwelling" not in main_codebook and "9=Prefer not to say" in main_codebook["gender"].value_labels_en
    assert FR_V2 in main_codebook["gender"].question_fr and main_codebook["gender"].versions == "floodlight-v2"


def test_a_version_change_keeps_each_participant_on_their_version_end_to_end(yukon, versions, admin_user):
    v1, v2 = versions
    study = make_study(slug="moving", questionnaire=v1)
    started = at_ses(study, "P-OLD")
    change = study.move_to_version(v2, user=admin_user)
    assert StudyVersionChange.objects.get() == change and change.participants_before == 1
    assert change.from_version_id == v1.content_hash and change.changed_by == admin_user
    newcomer = at_ses(study, "P-NEW")

    # The one who started on v1 resumes with the same link: v1's page, v1's codes.
    resumed = Respondent(study, panel_id="P-OLD", client=Client())
    assert resumed.take_over()["Location"].endswith("/ses/")
    page = resumed.get("ses").content.decode()
    assert 'name="dwelling"' in page and 'value="99"' in page
    assert resumed.post("ses", ses_answers(99, dwelling=True)).status_code == 302
    assert started.participant.instrument_version == "floodlight-v1"
    response = newcomer.post("ses", ses_answers(99, dwelling=False))
    assert response.status_code == 400 and _errors(response)
    assert newcomer.post("ses", ses_answers(9, dwelling=False)).status_code == 302
    resumed.answer_until(lambda step: step in {"treatment", "debrief", "screened_out"} or step.startswith("wtp"))
    assert resumed.participant.instrument_version == "floodlight-v1"

    frame = build_export(study).set_index("instrument_version")
    assert frame.loc["floodlight-v1", "gender"] == 99 and frame.loc["floodlight-v2", "gender"] == 9
    assert frame.loc["floodlight-v1", "dwelling"] == 1 and pd.isna(frame.loc["floodlight-v2", "dwelling"])
    assert [i.version for i in study_instruments(study)] == ["floodlight-v1", "floodlight-v2"]

    rows = build_codebook(study=study)
    genders = {row.versions: row for row in rows if row.variable == "gender"}
    assert set(genders) == {"floodlight-v1", "floodlight-v2"}
    assert "99=Prefer not to say" in genders["floodlight-v1"].value_labels_en
    assert "9=Prefer not to say" in genders["floodlight-v2"].value_labels_en
    assert FR_V1 in genders["floodlight-v1"].question_fr and FR_V2 in genders["floodlight-v2"].question_fr
    education = [row for row in rows if row.variable == "education"]
    assert len(education) == 1 and education[0].versions == "floodlight-v1; floodlight-v2"
    assert [row.versions for row in rows if row.variable == "dwelling"] == ["floodlight-v1"]
    # Stata keeps one label set per variable: both versions' codes, each with its meaning, and
    # the label a revision moved to another code names the version (Stata refuses repeated labels).
    labels = stata_value_labels(instruments=study_instruments(study))
    assert labels["gender"][99] == "Prefer not to say (floodlight-v1)"
    assert labels["gender"][9] == "Prefer not to say (floodlight-v2)"
    assert labels["gender"][1] == stata_value_labels(instruments=study_instruments(study)[:1])["gender"][1]
    assert labels["dwelling"][1] == "Single-detached house"


def test_a_study_with_participants_cannot_change_version_in_place(yukon, versions):
    v1, v2 = versions
    study = make_study(slug="fixed", questionnaire=v1)
    study.questionnaire = v2
    study.save()  # nobody yet: a plain edit
    study.questionnaire = v1
    study.save()
    at_ses(study, "X-1")
    study.questionnaire = v2
    with pytest.raises(ValidationError, match="cannot change in place"):
        study.save()
    study.refresh_from_db()
    assert study.questionnaire_id == v1.content_hash
    with pytest.raises(ValidationError, match="already uses"):
        study.move_to_version(v1)


def test_export_files_and_command_codebook_span_the_versions(yukon, versions, tmp_path):
    v1, v2 = versions
    study = make_study(slug="files", questionnaire=v1)
    at_ses(study, "F-1").post("ses", ses_answers(99, dwelling=True))
    study.move_to_version(v2)
    at_ses(study, "F-2").post("ses", ses_answers(9, dwelling=False))
    out = tmp_path / "codebook.csv"
    call_command("export_codebook", "--format", "csv", "--out", str(out), "--study", "files")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {(r["versions"], r["codes"]) for r in rows if r["variable"] == "gender"} == {
        ("floodlight-v1", "1; 2; 3; 99"), ("floodlight-v2", "1; 2; 3; 9")}
    md = tmp_path / "codebook.md"
    call_command("export_codebook", "--format", "md", "--out", str(md), "--study", "files")
    assert "versions floodlight-v1, floodlight-v2" in md.read_text(encoding="utf-8")
    # The default (no --study) still documents the default questionnaire, one row per column.
    call_command("export_codebook", "--format", "csv", "--out", str(out))
    assert {r["versions"] for r in csv.DictReader(io.StringIO(out.read_text())) if r["variable"] == "gender"} == {
        "floodlight-v1"}

    xlsx = tmp_path / "export.xlsx"
    call_command("export_responses", "--study", "files", "--format", "xlsx", "--out", str(xlsx))
    sheet = pd.read_excel(xlsx, sheet_name="codebook")
    assert set(sheet.loc[sheet["variable"] == "gender", "versions"]) == {"floodlight-v1", "floodlight-v2"}
    data = pd.read_excel(xlsx, sheet_name="data").set_index("instrument_version")
    assert data.loc["floodlight-v1", "gender"] == 99 and data.loc["floodlight-v2", "gender"] == 9
    parquet = tmp_path / "export.parquet"
    call_command("export_responses", "--study", "files", "--format", "parquet", "--out", str(parquet))
    assert sorted(pd.read_parquet(parquet)["gender"].tolist()) == [9, 99]
    dta = tmp_path / "export.dta"
    call_command("export_responses", "--study", "files", "--format", "dta", "--out", str(dta))
    assert sorted(pd.read_stata(dta)["gender"].astype(str)) == [  # opens: labels are unique
        "Prefer not to say (floodlight-v1)", "Prefer not to say (floodlight-v2)"]


def test_the_api_codebook_is_the_studys(yukon, versions, admin_client):
    _, v2 = versions
    make_study(slug="api-v2", questionnaire=v2)
    rows = admin_client.get("/api/studies/api-v2/codebook").json()
    assert "dwelling" not in {row["variable"] for row in rows}
    assert admin_client.get("/api/studies/").json()[0]["instrument_version"] == "floodlight-v2"
    assert InstrumentVersion.objects.count() == 2


def test_a_move_that_would_lose_the_randomization_strata_is_refused(versions):
    from studyserver.assignment.models import AllocationScheme

    v1, v2 = versions
    study = make_study(slug="strata", questionnaire=v1)
    AllocationScheme.objects.create(study=study, strata=AllocationScheme.Strata.ITEM, strata_item="dwelling")
    with pytest.raises(ValidationError, match="stratifies on 'dwelling'.*No item 'dwelling'"):
        study.move_to_version(v2)
    assert not StudyVersionChange.objects.exists()


def test_participant_pages_do_not_parse_yaml_again(yukon, versions, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from studyserver.instrument import definition

    _, v2 = versions
    respondent = at_ses(make_study(slug="fast", questionnaire=v2), "Q-1")
    assert respondent.get("ses").status_code == 200

    def refuse(*args, **kwargs):
        raise AssertionError("YAML parsed on a participant request")

    monkeypatch.setattr(definition, "parse_instrument_text", refuse)
    monkeypatch.setattr(definition.yaml, "safe_load", refuse)
    with CaptureQueriesContext(connection) as queries:
        assert respondent.get("ses").status_code == 200
    # The version is known by its hash on the participant's row: not even a query for it.
    assert not [q["sql"] for q in queries.captured_queries if "instrument_instrumentversion" in q["sql"]]
    assert respondent.post("ses", ses_answers(9, dwelling=False)).status_code == 302
