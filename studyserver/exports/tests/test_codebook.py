"""The codebook documents every export column, in both languages, from the instrument."""

from __future__ import annotations

import csv
import io

import pytest

from studyserver.exports.codebook import (
    CODEBOOK_COLUMNS,
    build_codebook,
    codebook_csv,
    codebook_markdown,
)
from studyserver.exports.export import PERSONAL_COLUMNS, export_columns
from studyserver.instrument.definition import get_instrument


def test_one_row_per_export_column_in_order():
    assert [row.variable for row in build_codebook()] == export_columns()
    with_personal = [row.variable for row in build_codebook(include_personal=True)]
    assert with_personal == export_columns(include_personal=True)
    assert with_personal[-len(PERSONAL_COLUMNS):] == list(PERSONAL_COLUMNS)


def test_every_item_in_both_languages_with_its_codes():
    instrument = get_instrument()
    rows = {row.variable: row for row in build_codebook(instrument)}
    for item in instrument.items:
        if item.is_personal:
            assert item.code not in rows
            continue
        row = rows[item.code]
        assert row.label_en == item.label.en and row.label_fr == item.label.fr
        assert item.text.en in row.question_en and item.text.fr in row.question_fr
        assert row.phase == item.phase and row.page == item.page and row.type == item.type
        for option in item.options:
            assert f"{option.code}={option.text.en}" in row.value_labels_en
            assert f"{option.code}={option.text.fr}" in row.value_labels_fr
        assert row.codes == "; ".join(str(o.code) for o in item.options) or item.type == "checkbox"


def test_phases_and_notes():
    rows = {row.variable: row for row in build_codebook()}
    assert rows["arm"].phase == "meta" and rows["t_consent"].phase == "meta"
    assert rows["ideology"].phase == "pre" and rows["worry"].phase == "pre"
    assert rows["emo_anxious"].phase == "post"
    assert "post-treatment moderator" in rows["emo_anxious"].notes
    assert "AFTER treatment" in rows["wtp_tax_oil"].notes
    assert "Missing (not zero) for control" in rows["exposure_ms"].notes
    assert rows["attention_passed"].value_labels_fr == "0=Non; 1=Oui"
    assert "attention check" in rows["attention_check"].notes


def test_csv_and_markdown_render():
    rows = build_codebook()
    parsed = list(csv.DictReader(io.StringIO(codebook_csv(rows))))
    assert tuple(parsed[0]) == CODEBOOK_COLUMNS and len(parsed) == len(rows)
    assert {"variable": "gender", "phase": "pre"}.items() <= parsed[
        [r["variable"] for r in parsed].index("gender")].items()
    markdown = codebook_markdown(rows)
    assert "## Pre-treatment questions" in markdown and "## Post-treatment questions" in markdown
    assert "post-treatment moderators" in markdown
    assert "| emo_anxious |" in markdown
    # A '|' in a label cannot break the table.
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert {line.count(" | ") - line.count("\\|") for line in table_lines} == {9}


@pytest.mark.parametrize("variable", ["gender", "emo_hopeful", "letter_signed", "manip_check"])
def test_known_items_have_french(variable):
    row = {r.variable: r for r in build_codebook()}[variable]
    assert row.label_fr and row.question_fr and row.label_fr != "" and row.value_labels_fr
