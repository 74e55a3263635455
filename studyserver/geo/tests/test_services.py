"""Lookups on the real reference data (2013 boundaries, GeoNames FSA centroids)."""

import json
from functools import cache
from pathlib import Path

import pytest
import shapely
from django.conf import settings
from shapely.geometry import Point, shape

from studyserver.geo import postal
from studyserver.geo.models import District, FsaPlacement
from studyserver.geo.services import districts_in_province, locate


@cache
def _reference_polygons() -> dict[str, shapely.Geometry]:
    """Read straight from the GeoJSON file: independent of the loader and of the stored WKB."""
    document = json.loads((Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2013.geojson").read_text())
    return {str(f["properties"]["fed_code"]): shape(f["geometry"]) for f in document["features"]}


def _containing_district(lon: float, lat: float) -> str | None:
    hits = [code for code, polygon in _reference_polygons().items() if polygon.contains(Point(lon, lat))]
    assert len(hits) <= 1
    return hits[0] if hits else None


@pytest.mark.parametrize(
    ("code", "fed_code"),
    [("B1B 1A1", "12001"), ("g8h 2b5", "24035"), ("K8A 1A1", "35086"), ("V9R 5K2", "59018"),
     ("A2A 1A1", "10003")],
)
def test_known_fsas_resolve_to_their_district(geo2013, code, fed_code):
    location = locate(code, "2013")
    assert location.valid and location.placeable and location.error is None
    assert location.decided_fed_code == fed_code
    assert [c.fed_code for c in location.candidates] == [fed_code]
    # Independent check: the centroid lies in that district's polygon …
    assert _containing_district(location.lon, location.lat) == fed_code
    # … and so does everything within a couple of kilometres (a crude FSA extent).
    district = _reference_polygons()[fed_code]
    assert district.contains(Point(location.lon, location.lat).buffer(0.02))
    assert District.objects.get(representation_order="2013", fed_code=fed_code).province_code == location.province_code


@pytest.mark.parametrize("code", ["H2X 1Y4", "T2P 1J9", "T2G 0A1", "V6B 4Y8", "R0E 1A0"])
def test_boundary_fsas_offer_several_candidates(geo2013, code):
    location = locate(code, "2013")
    assert location.valid and location.placeable
    assert location.decided_fed_code is None
    codes = [c.fed_code for c in location.candidates]
    assert len(codes) >= 2 and len(set(codes)) == len(codes)
    scores = [c.score for c in location.candidates]  # shares of the postal area …
    assert 0 < sum(scores) <= 1.0001
    stored = FsaPlacement.objects.get(representation_order="2013", fsa=location.fsa).candidates
    people = {c["fed_code"]: c.get("people", c["score"]) for c in stored}
    ranked = [people[code] for code in codes]  # … listed most (estimated) people first
    assert ranked == sorted(ranked, reverse=True)
    home = _containing_district(location.lon, location.lat)
    if home is not None:
        assert home in codes  # the district holding the centroid is always offered


def test_territories_are_decided_by_their_single_district(geo2013):
    assert locate("X0A 0H0", "2013").decided_fed_code == "62001"  # centroid far north, still Nunavut
    assert locate("X1A 2N4", "2013").decided_fed_code == "61001"
    assert locate("y1a 6e5", "2013").decided_fed_code == "60001"


def test_candidates_always_lie_in_the_province_of_the_postal_code(geo2013):
    province_of = dict(District.objects.filter(representation_order="2013").values_list("fed_code", "province_code"))
    placements = FsaPlacement.objects.filter(representation_order="2013")
    assert placements.count() > 1600
    for placement in placements:
        assert placement.province_code in postal.provinces_for_fsa(placement.fsa)
        for candidate in placement.candidates:
            assert province_of[candidate["fed_code"]] == placement.province_code, placement.fsa
        if placement.decided_fed_code:
            assert province_of[placement.decided_fed_code] == placement.province_code


def test_unknown_unplaceable_and_foreign_codes(geo2013):
    unknown = locate("K0Z 1A1", "2013")  # well-formed, but no such FSA
    assert (unknown.valid, unknown.error, unknown.placeable) == (False, postal.UNKNOWN_FSA, False)
    santa = locate("H0H 0H0", "2013")  # listed by GeoNames at the North Pole
    assert (santa.valid, santa.error, santa.placeable) == (True, postal.UNPLACEABLE, False)
    zip_code = locate("90210", "2013")
    assert (zip_code.valid, zip_code.error, zip_code.placeable) == (True, postal.NOT_CANADIAN, False)
    typo = locate("H2O 1Y4", "2013")
    assert (typo.valid, typo.error, typo.fsa) == (False, postal.BAD_LETTER, None)


def test_a_lookup_is_one_query(geo2013, django_assert_num_queries):
    with django_assert_num_queries(1):
        location = locate("M5V 3L9", "2013")
    assert location.candidates


def test_json_dict_has_exactly_the_contract_fields(geo2013):
    data = locate("h2x1y4", "2013").to_json_dict()
    assert list(data) == ["input", "normalized", "valid", "error", "fsa", "province_code", "lat", "lon",
                          "candidates", "decided_fed_code", "method", "source"]
    assert data["input"] == "h2x1y4" and data["normalized"] == "H2X 1Y4" and data["fsa"] == "H2X"
    assert all(list(c) == ["fed_code", "name_en", "name_fr", "score"] for c in data["candidates"])
    json.dumps(data)


def test_names_only_order_lets_the_participant_pick_in_the_province(geo2013):
    from studyserver.geo.store import load_districts

    # Inside this test's transaction (rolled back afterwards): 2023 as a names-only order.
    FsaPlacement.objects.filter(representation_order="2023").delete()
    District.objects.filter(representation_order="2023").delete()
    load_districts(Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.csv", "2023")
    assert District.objects.filter(representation_order="2023").count() == 343
    location = locate("H2X 1Y4", "2023")
    assert location.valid and location.placeable and location.province_code == "QC"
    assert location.candidates == [] and location.decided_fed_code is None
    quebec = districts_in_province("QC", "2023")
    assert quebec.count() == 78 and {d.province_code for d in quebec} == {"QC"}
    assert districts_in_province("qc", "2013").count() == 78
