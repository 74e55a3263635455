"""build_export: columns in instrument order, one row per participant, values as stored."""

from __future__ import annotations

import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studyserver.exports.export import META_COLUMNS, PERSONAL_COLUMNS, build_export, export_columns
from studyserver.instrument.definition import get_instrument
from studyserver.survey.flow import withdraw

from .conftest import SES
from .factories import make_district, make_participant, make_stimulus, make_study

pytestmark = pytest.mark.django_db

def test_columns_follow_the_instrument(study_with_people):
    study, *_ = study_with_people
    frame = build_export(study)
    instrument = get_instrument()
    codes = list(instrument.answer_codes)
    assert list(frame.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)
    assert list(frame.columns[len(META_COLUMNS): len(META_COLUMNS) + len(codes)]) == codes
    timing = [c for c in frame.columns if c.startswith("t_")]
    assert timing[0] == "t_consent" and "t_ses" in timing and "t_treatment" in timing
    assert list(frame.columns) == export_columns(instrument)
    assert not set(PERSONAL_COLUMNS) & set(frame.columns)
    # Personal items of the instrument never become answer columns.
    assert "email" not in frame.columns and "signature_name" not in frame.columns


def test_one_row_per_participant_with_values(study_with_people):
    study, treated, control, screened = study_with_people
    frame = build_export(study).set_index("participant_id")
    assert len(frame) == 3
    row = frame.loc[str(treated.pk)]
    assert row["state"] == "completed" and row["arm"] == "house" and row["stratum"] == "QC"
    assert row["sequence_position"] == 1
    assert row["fed_code"] == "24001" and row["rep_order"] == "2023"
    assert row["district_name_en"] == "Abitibi—Témiscamingue"
    assert row["exposure_ms"] == 12_345 and row["image_visible_ms"] == 12_000
    assert row["generator_backend"] == "climategan" and row["model_version"] == "v1.2"
    assert row["attention_passed"] == 1
    assert row["gender"] == 2 and row["income"] == 99 and row["wtp_tax_oil"] == 2
    assert row["info_floodprotect"] == 0
    assert row["t_ses"] == 20.0 and pd.isna(row["t_emotions"])
    assert frame["gender"].dtype == "Int64"

    control_row = frame.loc[str(control.pk)]
    assert control_row["arm"] == "control" and control_row["gender"] == 1
    assert pd.isna(control_row["exposure_ms"])  # null, not zero, for control
    assert pd.isna(control_row["stimulus_id"]) and pd.isna(control_row["wtp_tax_oil"])

    screened_row = frame.loc[str(screened.pk)]
    assert screened_row["state"] == "screened_out"
    assert screened_row["screenout_reason"] == "not_canadian"
    assert pd.isna(screened_row["arm"]) and pd.isna(screened_row["attention_passed"])


def test_withdrawn_participants_keep_only_their_slot(study_with_people):
    study, treated, *_ = study_with_people
    withdraw(treated)
    row = build_export(study, include_personal=True).set_index("participant_id").loc[str(treated.pk)]
    assert row["state"] == "withdrawn" and row["arm"] == "house"
    for column in ("gender", "birth_year", "fsa", "exposure_ms", "stimulus_id", "email",
                   "panel_id", "t_ses", "attention_passed", "language"):
        assert pd.isna(row[column]), column


def test_personal_columns_only_on_request(study_with_people):
    study, treated, control, _ = study_with_people
    frame = build_export(study, include_personal=True).set_index("participant_id")
    assert list(frame.columns[-len(PERSONAL_COLUMNS):]) == list(PERSONAL_COLUMNS)
    assert frame.loc[str(treated.pk), "email"] == "a@example.org"
    assert frame.loc[str(treated.pk), "postal_code"] == "J9X 1A1"
    assert frame.loc[str(treated.pk), "panel_parameters"] == '{"STUDY_ID": "S-1"}'
    assert pd.isna(frame.loc[str(control.pk), "panel_id"])


def test_later_submission_wins(study_with_people):
    study, treated, *_ = study_with_people
    from studyserver.survey.models import PageSubmission

    first = PageSubmission.objects.get(participant=treated, step="ses")
    PageSubmission.objects.create(
        participant=treated, step="values", answers={"val_bio1": 7, "gender": 1},
        served_at=first.served_at, submitted_at=first.submitted_at + pd.Timedelta(hours=1),
        seconds_on_page=3.5,
    )
    row = build_export(study).set_index("participant_id").loc[str(treated.pk)]
    assert row["gender"] == 1 and row["val_bio1"] == 7 and row["t_values"] == 3.5


def test_query_count_does_not_grow_with_participants(study_with_people):
    study, *_ = study_with_people
    with CaptureQueriesContext(connection) as small:
        build_export(study, include_personal=True)
    district = make_district("35001", "ON", "Ajax")
    for _ in range(15):
        make_participant(study, arm="distant", district=district, pages={"ses": SES},
                         exposure_ms=10_000, stimulus=make_stimulus("distant"))
    with CaptureQueriesContext(connection) as large:
        frame = build_export(study, include_personal=True)
    assert len(frame) == 18
    # Five for the export itself, three for the respondent-quality flags (participants, page times,
    # the batteries' answers).
    assert len(large.captured_queries) == len(small.captured_queries) <= 8


def test_empty_study_has_the_columns():
    frame = build_export(make_study("empty"))
    assert frame.empty and list(frame.columns) == export_columns()


@pytest.mark.django_db(transaction=True)
def test_the_analysis_reads_the_database_through_the_export_code(study_with_people, monkeypatch):
    from analysis.io import ExportError, read_export

    # db:SLUG runs export_responses in a process of its own: it must see this test's database
    # (committed rows, hence transaction=True), not the one DATABASE_URL names outside the tests.
    database = connection.settings_dict
    monkeypatch.setenv("DATABASE_URL", "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**database))
    study, treated, control, screened = study_with_people
    frame = read_export(f"db:{study.slug}")
    expected = build_export(study)
    assert list(frame.columns) == list(expected.columns) and len(frame) == 3
    assert "email" not in frame.columns and "panel_id" not in frame.columns
    assert set(frame["participant_id"]) == {str(p.pk) for p in (treated, control, screened)}
    with pytest.raises(ExportError, match="No study 'nope'.*flood-test"):
        read_export("db:nope")
