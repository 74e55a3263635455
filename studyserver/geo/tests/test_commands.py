"""The locate_postal_code contract (call_command and a real subprocess) and the audit command."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

CONTRACT_FIELDS = ["input", "normalized", "valid", "error", "fsa", "province_code", "lat", "lon", "candidates",
                   "decided_fed_code", "method", "source"]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_output_one_object_per_code(geo2013):
    out = io.StringIO()
    call_command("locate_postal_code", "b1b 1a1", "H2X1Y4", "D2X 1Y4", "12345", json=True,
                 representation_order="2013", stdout=out)
    decided, ambiguous, bad, foreign = _json_lines(out.getvalue())
    for row in (decided, ambiguous, bad, foreign):
        assert list(row) == CONTRACT_FIELDS
    assert decided["decided_fed_code"] == "12001" and decided["normalized"] == "B1B 1A1" and decided["valid"]
    assert decided["candidates"][0]["fed_code"] == "12001"
    assert ambiguous["decided_fed_code"] is None and len(ambiguous["candidates"]) >= 2
    assert list(ambiguous["candidates"][0]) == ["fed_code", "name_en", "name_fr", "score"]
    assert ambiguous["province_code"] == "QC" and 45 < ambiguous["lat"] < 46 and -74 < ambiguous["lon"] < -73
    assert (bad["valid"], bad["error"], bad["fsa"], bad["candidates"]) == (False, "bad_letter", None, [])
    assert foreign["error"] == "not_canadian" and foreign["decided_fed_code"] is None
    # Both placed from the FSA polygons (the reference fsa_2021.geojson), not the centroids.
    assert decided["method"] == ambiguous["method"] == "fsa_area"
    assert decided["source"].endswith("fsa_2021.geojson") and bad["method"] is None and foreign["source"] is None


def test_file_option_and_readable_table(geo2013, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("# one per line\nH2X 1Y4\n\nx0a0h0\nW1A 1A1\n")
    out = io.StringIO()
    call_command("locate_postal_code", file=str(codes), json=True, representation_order="2013", stdout=out)
    rows = _json_lines(out.getvalue())
    assert [r["input"] for r in rows] == ["H2X 1Y4", "x0a0h0", "W1A 1A1"]
    assert rows[1]["decided_fed_code"] == "62001" and rows[2]["error"] == "bad_first_letter"

    out = io.StringIO()
    call_command("locate_postal_code", "H2X 1Y4", "x0a0h0", "W1A 1A1", representation_order="2013", stdout=out)
    table = out.getvalue()
    assert "Laurier—Sainte-Marie" in table and "62001" in table and "error: bad_first_letter" in table
    assert not table.lstrip().startswith("{")
    with pytest.raises(CommandError):
        call_command("locate_postal_code", stdout=io.StringIO())


def test_subprocess_prints_the_contract(geo2013):
    """The command as researchers run it: a separate process on the same (committed) test database."""
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings_test", "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "manage.py", "locate_postal_code", "G8H 2B5", "H2X1Y4", "--json",
         "--representation-order", "2013"],
        cwd=Path(settings.BASE_DIR), env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    first, second = _json_lines(result.stdout)
    assert list(first) == CONTRACT_FIELDS
    assert first["decided_fed_code"] == "24035"
    assert second["decided_fed_code"] is None and "24039" in {c["fed_code"] for c in second["candidates"]}
    assert (first["method"], second["method"]) == ("fsa_area", "fsa_area")


def test_audit_reports_near_zero_silent_errors(geo2013):
    out = io.StringIO()
    call_command("audit_geocoding", representation_order="2013", samples=40, caps="none", stdout=out)
    text = out.getvalue()
    assert "asked (participant picks)" in text
    rate = float(text.split("silent-error rate:")[1].split("%")[0])
    assert rate < 0.5  # percent of (FSA, location) pairs decided without asking and wrong
    decided = float(text.split("decided without asking:")[1].split("(")[1].split("%")[0])
    assert decided >= 50  # the bar, from the shipped polygons
    by_method = text.split("by method:")[1].split("by province:")[0]
    area = next(line.split() for line in by_method.splitlines() if line.strip().startswith("fsa_area"))
    assert int(area[1]) > 1500 and float(area[5].rstrip("%")) >= 99 and float(area[6]) <= 3  # recall, candidates
    assert "sole_district" in by_method and "\n  QC " in text.split("by province:")[1]
    # The trade-off option: deciding only FSAs wholly in one district decides fewer.
    out = io.StringIO()
    call_command("audit_geocoding", representation_order="2013", samples=10, caps="none", fsa_area_threshold=1.0,
                 stdout=out)
    strict = float(out.getvalue().split("decided without asking:")[1].split("(")[1].split("%")[0])
    assert 10 < strict < decided
