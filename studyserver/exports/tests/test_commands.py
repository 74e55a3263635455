"""export_responses / export_codebook: every format, labels in the .dta, errors, the log."""

from __future__ import annotations

import os
from io import StringIO

import pandas as pd
import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command

from studyserver.exports.export import PERSONAL_COLUMNS, export_columns
from studyserver.exports.models import ExportLog
from studyserver.instrument.definition import get_instrument


def run_export(*args: str) -> str:
    """The command on the fixture's study (``--study`` given explicitly where a test says so)."""
    out = StringIO()
    study = [] if "--study" in args else ["--study", "flood-test"]
    call_command("export_responses", *args, *study, stdout=out)
    return out.getvalue()


@pytest.fixture
def permitted_user(db):
    user = User.objects.create_user("researcher", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "dta", "parquet"])
def test_every_format_round_trips(study_with_people, tmp_path, fmt):
    study, treated, *_ = study_with_people
    path = tmp_path / f"export.{fmt}"
    output = run_export("--format", fmt, "--out", str(path), "--study", study.slug)
    assert "Wrote 3 rows" in output and "participants read" in output
    reader = {"csv": pd.read_csv, "xlsx": pd.read_excel, "parquet": pd.read_parquet,
              "dta": lambda p: pd.read_stata(p, convert_categoricals=False)}[fmt]
    frame = reader(path)
    assert list(frame.columns) == export_columns()
    row = frame.set_index("participant_id").loc[str(treated.pk)]
    assert row["gender"] == 2 and row["exposure_ms"] == 12_345 and row["arm"] == "house"
    log = ExportLog.objects.get()
    assert (log.format, log.row_count, log.included_personal_data, log.study_slug) == (
        fmt, 3, False, study.slug)
    assert log.channel == "command" and log.username.startswith("(shell:")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_dta_embeds_value_and_variable_labels(study_with_people, tmp_path):
    study, treated, *_ = study_with_people
    path = tmp_path / "export.dta"
    run_export("--format", "dta", "--out", str(path))
    instrument = get_instrument()
    with pd.io.stata.StataReader(path) as reader:
        value_labels = reader.value_labels()
        variable_labels = reader.variable_labels()
    assert value_labels["gender"] == instrument.item("gender").value_labels("en")
    assert value_labels["wtp_tax_oil"][5] == "Strongly agree"
    assert value_labels["attention_passed"] == {0: "No", 1: "Yes"}
    assert variable_labels["gender"] == "Gender"
    assert all(len(label) <= 80 for label in variable_labels.values())
    labelled = pd.read_stata(path).set_index("participant_id")
    assert labelled.loc[str(treated.pk), "gender"] == "Man"
    assert labelled.loc[str(treated.pk), "income"] == "Prefer not to say"
    assert labelled.loc[str(treated.pk), "started_at"].tzinfo is None


def test_xlsx_has_a_codebook_sheet(study_with_people, tmp_path):
    path = tmp_path / "export.xlsx"
    run_export("--format", "xlsx", "--out", str(path))
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == ["data", "codebook"]
    assert list(sheets["codebook"]["variable"]) == export_columns()
    assert "label_fr" in sheets["codebook"].columns


def test_personal_data_needs_the_permission(study_with_people, tmp_path, permitted_user):
    path = tmp_path / "p.csv"
    User.objects.create_user("assistant", is_staff=True)
    with pytest.raises(CommandError, match="needs --user"):
        run_export("--format", "csv", "--out", str(path), "--include-personal")
    with pytest.raises(CommandError, match="lacks the permission"):
        run_export("--format", "csv", "--out", str(path), "--include-personal",
                   "--user", "assistant")
    assert not path.exists() and not ExportLog.objects.exists()
    run_export("--format", "csv", "--out", str(path), "--include-personal", "--user", "researcher")
    frame = pd.read_csv(path)
    assert list(frame.columns[-len(PERSONAL_COLUMNS):]) == list(PERSONAL_COLUMNS)
    assert "a@example.org" in set(frame["email"].dropna())
    log = ExportLog.objects.get()
    assert log.included_personal_data and log.user == permitted_user
    assert log.username == "researcher"


@pytest.mark.parametrize("args, message", [
    (["--format", "sav"], "Unknown export format 'sav'"),
    (["--format", "csv", "--study", "nope"], "No study 'nope'"),
    (["--format", "csv", "--user", "ghost"], "No user 'ghost'"),
])
def test_clear_errors(study_with_people, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run_export(*args, "--out", str(tmp_path / "x.out"))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_paths(study_with_people, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_export("--format", "csv", "--out", str(tmp_path / "missing" / "x.csv"))
    with pytest.raises(CommandError, match="is a directory"):
        run_export("--format", "csv", "--out", str(tmp_path))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # As root, permissions are not enforced and the export simply succeeds.
        if not os.access(locked, os.W_OK):
            with pytest.raises(CommandError, match="no permission"):
                run_export("--format", "csv", "--out", str(locked / "x.csv"))
    finally:
        locked.chmod(0o700)


def test_failed_write_keeps_the_old_file(study_with_people, tmp_path, monkeypatch):
    path = tmp_path / "export.csv"
    path.write_text("previous export\n")
    from studyserver.exports import formats

    def broken(frame, target, instrument):
        target.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setitem(formats._WRITERS, "csv", broken)
    with pytest.raises(CommandError, match="disk full"):
        run_export("--format", "csv", "--out", str(path))
    assert path.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]
    assert not ExportLog.objects.exists()


def test_several_studies_need_a_slug(study_with_people, tmp_path):
    # The fixture made two studies.
    with pytest.raises(CommandError, match="Several studies"):
        call_command("export_responses", "--format", "csv", "--out", str(tmp_path / "x.csv"))


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_export_codebook(tmp_path, fmt):
    path = tmp_path / f"codebook.{fmt}"
    out = StringIO()
    call_command("export_codebook", "--format", fmt, "--out", str(path), stdout=out)
    text = path.read_text(encoding="utf-8")
    assert "emo_anxious" in text and "Genre" in text and "Wrote" in out.getvalue()
    if fmt == "csv":
        assert list(pd.read_csv(path)["variable"]) == export_columns()


def test_export_codebook_unknown_format(tmp_path):
    with pytest.raises(CommandError, match="csv or md"):
        call_command("export_codebook", "--format", "pdf", "--out", str(tmp_path / "c.pdf"))


def test_an_empty_export_says_there_is_no_data(db, tmp_path):
    from studyserver.studies.models import Study

    Study.objects.create(slug="empty", title="Empty")
    out, err = StringIO(), StringIO()
    call_command("export_responses", "--format", "csv", "--out", str(tmp_path / "e.csv"), "--study", "empty",
                 stdout=out, stderr=err)
    assert "Wrote 0 rows" in out.getvalue()
    assert "has no participants yet" in err.getvalue()
