"""Full postal codes from a generated National Address Register sample, checked against its truth."""

import io
import zipfile

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from studyserver.geo.addresses import PairCounter, decode_postal_code, encode_postal_codes
from studyserver.geo.candidates import DistrictShape
from studyserver.geo.models import District, PostalCodePlacement
from studyserver.geo.samples import NAR_COLUMNS, generate_register, write_register
from studyserver.geo.services import locate


@pytest.fixture(scope="module")
def sample(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        from studyserver.geo.reference import load_reference_districts

        load_reference_districts("2013")
        districts = [DistrictShape(d.fed_code, d.province_code, d.geometry())
                     for d in District.objects.filter(representation_order="2013")]
    return generate_register(districts, whole_codes=150, split_codes=40, seed=7)


@pytest.fixture
def register_zip(sample, tmp_path):
    """Two Address_*.csv files in a zip, one of them in Windows-1252 (not valid UTF-8)."""
    folder = tmp_path / "nar"
    first, second = write_register(sample.frame, folder, files=2)
    second.write_bytes(second.read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        second.read_text(encoding="utf-8")
    archive = tmp_path / "202412.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in (first, second):
            handle.write(path, f"Addresses/{path.name}")
    return archive


def test_postal_codes_round_trip_through_int64():
    codes = np.array(["K1A0B1", "H2X1Y4", "Y1A6E5"])
    assert [decode_postal_code(v) for v in encode_postal_codes(codes)] == list(codes)
    counter = PairCounter()
    counter.add(encode_postal_codes(codes[[0, 1, 0]]), np.array([1, 0, 1]), np.ones(3))
    counter.add(encode_postal_codes(codes[[0]]), np.array([0]), np.ones(1))
    assert counter.result(["A", "B"]) == {"K1A0B1": [("B", 2.0), ("A", 1.0)], "H2X1Y4": [("A", 1.0)]}


def test_register_decides_whole_codes_and_asks_for_split_ones(geo2013, sample, register_zip):
    out = io.StringIO()
    call_command("load_addresses", str(register_zip), "--representation-order", "2013", stdout=out)
    text = out.getvalue()
    non_residential = int((sample.frame["BU_USE"] == "3").sum())
    assert f"read {len(sample.frame):,} rows from 2 file(s)" in text
    assert f"skipped {non_residential:,} non-residential (BU_USE 3)" in text
    assert "100.0%" in text and f"{len(sample.truth):,} stored" in text
    whole = [t for t in sample.truth.values() if t.kind == "whole"]
    split = [t for t in sample.truth.values() if t.kind == "split"]
    right = 0
    for truth in whole:
        location = locate(f"{truth.postal_code[:3]} {truth.postal_code[3:]}", "2013")
        assert location.method == "address" and location.source.startswith("register: ")
        right += location.decided_fed_code == next(iter(truth.residential_shares))
    assert right / len(whole) >= 0.97
    candidate_counts = []
    for truth in split:
        location = locate(truth.postal_code, "2013")
        assert location.method == "address" and location.decided_fed_code is None, truth
        offered = {c.fed_code: c.score for c in location.candidates}
        assert set(truth.residential_shares) <= set(offered)
        for code, share in truth.residential_shares.items():
            # The loader's shares are counts of BU_USE 1/2/4 addresses: equal to the truth's.
            assert offered[code] == pytest.approx(share, abs=0.04)
        candidate_counts.append(len(offered))
    assert np.mean(candidate_counts) <= 3
    # A study with a lower threshold decides split codes whose majority reaches it.
    truth = max(split, key=lambda t: max(t.residential_shares.values()))
    majority = max(truth.residential_shares, key=truth.residential_shares.get)
    lenient = locate(truth.postal_code, "2013", postal_code_threshold=0.5)
    assert lenient.decided_fed_code == majority


def test_all_uses_counts_offices_too(geo2013, sample, register_zip):
    call_command("load_addresses", str(register_zip), "--representation-order", "2013", "--all-uses",
                 stdout=io.StringIO())
    whole = [t for t in sample.truth.values() if t.kind == "whole"]
    # The sample files each code's offices far away: counted, they make some whole codes split.
    asked = sum(locate(t.postal_code, "2013").decided_fed_code is None for t in whole)
    assert asked > 0


def test_a_second_load_replaces_the_first_and_a_concordance_is_accepted(geo2013, sample, register_zip, tmp_path):
    call_command("load_addresses", str(register_zip), "--representation-order", "2013", stdout=io.StringIO())
    assert PostalCodePlacement.objects.filter(representation_order="2013").count() == len(sample.truth)
    concordance = tmp_path / "mine.csv"
    concordance.write_text("postal_code,fed_code,weight\nK1A 0B1,35075,3\nk1a0b1,35078,1\nH2X1Y4,24039,1\n"
                           "H2X1Y5,99999,1\nnot-a-code,35075,1\n")
    out = io.StringIO()
    call_command("load_addresses", str(concordance), "--representation-order", "2013", stdout=out)
    assert "fed_codes not loaded: {'99999': 1}" in out.getvalue() and "skipped 1 without a valid postal code" in out.getvalue()
    assert PostalCodePlacement.objects.filter(representation_order="2013").count() == 2
    k1a = locate("K1A 0B1", "2013")
    assert k1a.method == "address" and k1a.decided_fed_code is None
    assert [(c.fed_code, c.score) for c in k1a.candidates] == [("35075", 0.75), ("35078", 0.25)]
    assert locate("H2X 1Y4", "2013").decided_fed_code == "24039"
    # A code the concordance does not list falls back to its FSA.
    assert locate("H2X 2A1", "2013").method == "fsa_area"
    out = io.StringIO()
    call_command("audit_geocoding", representation_order="2013", samples=5, caps="none", stdout=out)
    section = out.getvalue().split("== full postal codes (method address), from concordance: ")[1]
    rows = {line.split()[0]: line.split()[1:] for line in section.splitlines()[2:] if line.strip()}
    assert rows["ON"] == ["1", "0.0%", "100.0%"] and rows["QC"] == ["1", "100.0%", "0.0%"] and rows["all"][0] == "2"


def test_bad_register_files_are_clear_errors_and_keep_the_previous_load(geo2013, tmp_path):
    concordance = tmp_path / "mine.csv"
    concordance.write_text("postal_code,fed_code\nK1A0B1,35075\n")
    call_command("load_addresses", str(concordance), "--representation-order", "2013", stdout=io.StringIO())
    broken = tmp_path / "Address_1.csv"
    broken.write_text(",".join(c for c in NAR_COLUMNS if c != "BG_Y") + "\n")
    with pytest.raises(CommandError, match=r"Address_1.csv: missing column BG_Y"):
        call_command("load_addresses", str(broken), "--representation-order", "2013", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_addresses", str(tmp_path / "nothing.zip"), "--representation-order", "2013",
                     stdout=io.StringIO())
    empty_zip = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w") as handle:
        handle.writestr("readme.txt", "no addresses")
    with pytest.raises(CommandError, match="no Address_"):
        call_command("load_addresses", str(empty_zip), "--representation-order", "2013", stdout=io.StringIO())
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("postal_code,fed_code\nK1A0B1,99999\n")
    with pytest.raises(CommandError, match="no usable row"):
        call_command("load_addresses", str(unknown), "--representation-order", "2013", stdout=io.StringIO())
    assert locate("K1A 0B1", "2013").decided_fed_code == "35075"  # the earlier load is intact


def test_sources_may_be_urls(geo2013, tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "mine.csv").write_text("postal_code,fed_code\nK1A0B1,35075\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = io.StringIO()
        call_command("load_addresses", f"http://127.0.0.1:{server.server_port}/mine.csv", "--representation-order",
                     "2013", stdout=out)
        assert "downloaded" in out.getvalue()
        assert locate("K1A 0B1", "2013").decided_fed_code == "35075"
        with pytest.raises(CommandError, match="could not download"):
            call_command("load_fsa_boundaries", f"http://127.0.0.1:{server.server_port}/missing.zip",
                         stdout=io.StringIO())
    finally:
        server.shutdown()
