"""FSA polygons: loading (GeoJSON, Statistics Canada's shapefile zip), area shares, thresholds, fallback."""

import io
import json
import zipfile

import numpy as np
import pytest
import shapefile
import shapely
from django.core.management import CommandError, call_command
from pyproj import Transformer
from shapely.geometry import box, mapping

from studyserver.geo.areas import (
    FsaShape,
    compute_area_shares,
    decide_by_area,
    estimate_people,
    offered,
)
from studyserver.geo.candidates import DistrictShape
from studyserver.geo.models import District, FsaBoundary, FsaPlacement
from studyserver.geo.services import locate

# Two districts side by side near Ottawa: 35001 west of -75.5, 35002 east of it.
WEST, EAST = box(-75.7, 45.3, -75.5, 45.5), box(-75.5, 45.3, -75.3, 45.5)


def _districts() -> list[DistrictShape]:
    return [DistrictShape("35001", "ON", WEST), DistrictShape("35002", "ON", EAST)]


def test_area_shares_are_measured_in_an_equal_area_projection():
    fsas = [
        FsaShape("K1A", "ON", box(-75.65, 45.35, -75.55, 45.45)),  # inside the west district
        FsaShape("K1B", "ON", box(-75.55, 45.35, -75.45, 45.45)),  # half and half
        FsaShape("K1C", "ON", box(-75.60, 45.35, -75.499, 45.45)),  # 1 % of it east of the line
        FsaShape("K2A", "ON", box(-74.0, 45.35, -73.9, 45.45)),  # outside every district: left out
        FsaShape("H1A", "QC", box(-75.65, 45.35, -75.55, 45.45)),  # Quebec FSA on Ontario districts: left out
    ]
    shares = compute_area_shares(_districts(), fsas)
    assert set(shares) == {"K1A", "K1B", "K1C"}
    assert shares["K1A"].shares == [("35001", pytest.approx(1.0))]
    (first, a), (second, b) = shares["K1B"].shares
    assert {first, second} == {"35001", "35002"} and a == pytest.approx(0.5, abs=0.002) and a + b == pytest.approx(1)
    assert shares["K1C"].shares[0][0] == "35001" and shares["K1C"].shares[0][1] == pytest.approx(0.99, abs=0.0015)
    assert shapely.contains_xy(WEST, shares["K1A"].lon, shares["K1A"].lat)


def test_a_district_outline_missing_parts_does_not_hand_the_fsa_to_a_neighbour():
    # 95 % of this FSA lies where no district is known (the shipped 2013 file lacks parts of some).
    fsa = FsaShape("K1D", "ON", box(-75.51, 45.35, -75.31 + 0.0, 45.45).union(box(-75.31, 45.35, -73.5, 45.45)))
    assert compute_area_shares(_districts(), [fsa]) == {}


def test_threshold_decides_else_offers_districts_above_the_floor():
    shares = estimate_people([("35001", 0.985), ("35002", 0.012), ("35003", 0.003)], {})  # densities unknown
    assert [(s.fed_code, s.people) for s in shares] == [("35001", 0.985), ("35002", 0.012), ("35003", 0.003)]
    assert decide_by_area(shares, 0.99) == (None, shares[:2])  # 0.5 % of the area is the floor
    assert decide_by_area(shares, 0.98) == ("35001", shares[:1])
    split = estimate_people([("35001", 0.6), ("35002", 0.35), ("35003", 0.05)], {})
    assert decide_by_area(split, 0.99) == (None, split)
    assert decide_by_area([], 0.99) == (None, [])
    # Address shares (full postal codes) are counts of real addresses: every one above the floor.
    assert offered([("35001", 0.6), ("35002", 0.004)], 0.95, min_share=0.0) == (None, [("35001", 0.6), ("35002", 0.004)])


def test_candidates_are_ordered_by_estimated_people_and_shown_with_their_area_share():
    # Downtown Winnipeg's R3C on the 2023 map: 98 % Winnipeg West by area, but Winnipeg Centre is
    # twenty times denser (adults per km²), so most of its people are estimated to live there.
    density = {"46014": 122.5, "46010": 2539.6, "46013": 1806.1}
    shares = estimate_people([("46014", 0.9795), ("46010", 0.0193), ("46013", 0.0006)], density)
    decided, kept = decide_by_area(shares, 0.99)
    assert decided is None and [s.fed_code for s in kept] == ["46014", "46010"]
    assert kept[1].area == 0.0193 and kept[1].people == pytest.approx(0.0193 * 2539.6 / sum(
        a * density[c] for c, a in (("46014", 0.9795), ("46010", 0.0193), ("46013", 0.0006))))
    # Downtown Calgary's T2P: 98 % Bow River (4 adults/km²), 2 % Calgary Centre (2,400/km²).
    t2p = estimate_people([("48003", 0.979), ("48004", 0.021)], {"48003": 4.1, "48004": 2408.4})
    assert [s.fed_code for s in decide_by_area(t2p, 0.99)[1]] == ["48004", "48003"]
    assert decide_by_area(t2p, 0.95)[0] is None  # a lenient study's threshold does not decide it either


def test_a_sliver_of_a_much_denser_district_is_never_decided_away():
    rural_with_town = estimate_people([("47004", 0.996), ("47006", 0.004)], {"47004": 1.7, "47006": 837.0})
    decided, kept = decide_by_area(rural_with_town, 0.99)
    assert decided is None and [s.fed_code for s in kept] == ["47006", "47004"]  # offered though < 0.5 % of the area
    alike = estimate_people([("35001", 0.996), ("35002", 0.004)], {"35001": 2000.0, "35002": 2600.0})
    assert decide_by_area(alike, 0.99) == ("35001", alike[:1])  # a neighbour of similar density: decided
    missing = estimate_people([("35001", 0.996), ("35002", 0.004)], {"35001": 2000.0, "35002": None})
    assert decide_by_area(missing, 0.99)[0] == "35001"  # no density known: area alone, as before


def _write_geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geometry} for props, geometry in features]}))


@pytest.fixture
def tiny_world(geo2013):
    """Only the two test districts in the 2013 order, with the real FSA centroids (rolled back after)."""
    FsaPlacement.objects.all().delete()
    FsaBoundary.objects.all().delete()
    District.objects.all().delete()
    for code, geometry in (("35001", WEST), ("35002", EAST)):
        District.objects.create(representation_order="2013", fed_code=code, name_en=f"District {code}",
                                name_fr=f"Circonscription {code}", province_code="ON",
                                geometry_wkb=shapely.to_wkb(geometry))


def test_load_fsa_boundaries_command_repairs_is_idempotent_and_recomputes_placements(tiny_world, tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[-75.65, 45.35], [-75.55, 45.45], [-75.55, 45.35],
                                                  [-75.65, 45.45], [-75.65, 45.35]]]}
    source = tmp_path / "fsa.geojson"
    _write_geojson(source, [
        ({"fsa": "K1A", "province_code": "ON"}, mapping(box(-75.65, 45.35, -75.55, 45.45))),
        ({"fsa": "k1b", "province_code": "35"}, mapping(box(-75.55, 45.35, -75.45, 45.45))),
        ({"fsa": "K1E", "province_code": ""}, bowtie),  # self-intersecting: repaired
    ])
    out = io.StringIO()
    call_command("load_fsa_boundaries", str(source), stdout=out)
    text = out.getvalue()
    assert "3 created, 0 updated, 0 unchanged, 1 invalid geometries repaired" in text
    assert "FSA placements (2013)" in text and "read 3/3 FSA polygons" in text
    assert FsaBoundary.objects.get(fsa="K1B").province_code == "ON"
    k1a = FsaPlacement.objects.get(representation_order="2013", fsa="K1A")
    assert (k1a.method, k1a.decided_fed_code) == ("area", "35001") and k1a.source.endswith("fsa.geojson")
    k1b = FsaPlacement.objects.get(representation_order="2013", fsa="K1B")
    assert k1b.method == "area_split" and {c["fed_code"] for c in k1b.candidates} == {"35001", "35002"}
    # FSAs without a polygon keep the centroid method (K2P is a real GeoNames FSA, far from these districts).
    assert FsaPlacement.objects.get(representation_order="2013", fsa="K2P").method not in ("area", "area_split")

    out = io.StringIO()
    call_command("load_fsa_boundaries", str(source), "--skip-placements", stdout=out)
    assert "0 created, 0 updated, 3 unchanged" in out.getvalue()
    assert FsaBoundary.objects.count() == 3


def test_study_threshold_decides_at_lookup_time(tiny_world, tmp_path):
    source = tmp_path / "fsa.geojson"
    # 80 % west, 20 % east.
    _write_geojson(source, [({"fsa": "K1B", "province_code": "ON"}, mapping(box(-75.58, 45.35, -75.48, 45.45)))])
    call_command("load_fsa_boundaries", str(source), stdout=io.StringIO())
    asked = locate("K1B 2C3", "2013")
    assert asked.decided_fed_code is None and asked.method == "fsa_area"
    assert [c.fed_code for c in asked.candidates] == ["35001", "35002"]
    assert asked.candidates[0].score == pytest.approx(0.8, abs=0.01)
    lenient = locate("K1B 2C3", "2013", fsa_area_threshold=0.75)
    assert lenient.decided_fed_code == "35001" and [c.fed_code for c in lenient.candidates] == ["35001"]


def test_statistics_canada_shapefile_zip_in_epsg3347(tiny_world, tmp_path):
    to_lambert = Transformer.from_crs("EPSG:4326", "EPSG:3347", always_xy=True)

    def projected(geometry):
        return shapely.transform(geometry, lambda xy: np.column_stack(to_lambert.transform(xy[:, 0], xy[:, 1])))

    folder = tmp_path / "lfsa000b21a_e"
    folder.mkdir()
    with shapefile.Writer(str(folder / "lfsa000b21a_e"), shapeType=shapefile.POLYGON) as writer:
        writer.field("CFSAUID", "C", size=3)
        writer.field("DGUID", "C", size=20)
        writer.field("PRUID", "C", size=2)
        writer.field("PRNAME", "C", size=60)
        for fsa, geometry in (("K1A", box(-75.65, 45.35, -75.55, 45.45)), ("K1B", box(-75.45, 45.35, -75.35, 45.45))):
            writer.shape(mapping(projected(geometry)))
            writer.record(fsa, f"2021A0011{fsa}", "35", "Ontario")
    (folder / "lfsa000b21a_e.prj").write_text(
        'PROJCS["PCS_Lambert_Conformal_Conic",GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",'
        'SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
        'PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",6200000.0],PARAMETER["False_Northing",'
        '3000000.0],PARAMETER["Central_Meridian",-91.86666666666666],PARAMETER["Standard_Parallel_1",49.0],'
        'PARAMETER["Standard_Parallel_2",77.0],PARAMETER["Latitude_Of_Origin",63.390675],UNIT["Meter",1.0]]')
    archive = tmp_path / "lfsa000b21a_e.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in folder.iterdir():
            handle.write(path, path.name)
    out = io.StringIO()
    call_command("load_fsa_boundaries", str(archive), stdout=out)
    assert "2 created" in out.getvalue()
    k1a = FsaBoundary.objects.get(fsa="K1A")
    assert k1a.province_code == "ON" and k1a.area_km2 == pytest.approx(87.6, rel=0.02)
    west, south, east, north = k1a.geometry().bounds
    assert (west, south, east, north) == pytest.approx((-75.65, 45.35, -75.55, 45.45), abs=1e-4)
    assert FsaPlacement.objects.get(representation_order="2013", fsa="K1B").decided_fed_code == "35002"


def test_bad_sources_are_clear_errors(tiny_world, tmp_path):
    source = tmp_path / "fsa.geojson"
    _write_geojson(source, [({"code": "K1A"}, mapping(box(-75.65, 45.35, -75.55, 45.45)))])
    with pytest.raises(CommandError, match=r"missing field fsa .*--field"):
        call_command("load_fsa_boundaries", str(source), stdout=io.StringIO())
    out = io.StringIO()
    call_command("load_fsa_boundaries", str(source), "--field", "fsa=code", stdout=out)
    assert "1 created" in out.getvalue()
    _write_geojson(source, [({"fsa": "K1A", "province_code": "QC"}, mapping(box(-75.65, 45.35, -75.55, 45.45)))])
    with pytest.raises(CommandError, match="FSA K1A cannot be in QC"):
        call_command("load_fsa_boundaries", str(source), stdout=io.StringIO())
    _write_geojson(source, [({"fsa": "12345"}, mapping(box(-75.65, 45.35, -75.55, 45.45)))])
    with pytest.raises(CommandError, match="'12345' is not an FSA"):
        call_command("load_fsa_boundaries", str(source), stdout=io.StringIO())
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_fsa_boundaries", str(tmp_path / "missing.geojson"), stdout=io.StringIO())


def test_reference_polygons_decide_most_fsas(geo2013):
    placements = FsaPlacement.objects.filter(representation_order="2013")
    by_area = placements.filter(method__in=("area", "area_split")).count()
    decided = placements.exclude(decided_fed_code="").count()
    assert by_area > 1550 and decided / placements.filter(placeable=True).count() > 0.5
    assert locate("Y1A 6E5", "2013").method == "sole_district"  # no polygon for the territories
    assert locate("M5K 1A1", "2013").method == "fsa_centroid"  # a GeoNames FSA without a 2021 polygon


def test_admin_lists_polygons_and_postal_codes_read_only(geo2013, admin_client):
    page = admin_client.get("/admin/geo/fsaboundary/?q=H2X")
    assert page.status_code == 200 and b"H2X" in page.content and b"fsa_2021.geojson" in page.content
    assert admin_client.get("/admin/geo/fsaboundary/add/").status_code == 403
    assert admin_client.get("/admin/geo/postalcodeplacement/").status_code == 200


def test_reference_2023_boundaries_decide_most_fsas_and_hold_the_people_downtown(geo2023):
    districts = District.objects.filter(representation_order="2023")
    assert districts.count() == 343 and not districts.filter(geometry_wkb=None).exists()
    assert not districts.filter(population=None).exists()
    placements = FsaPlacement.objects.filter(representation_order="2023", placeable=True)
    assert placements.exclude(decided_fed_code="").count() / placements.count() > 0.45
    r3c = locate("R3C 4T3", "2023")  # downtown Winnipeg: most people in Winnipeg Centre's 1.9 %
    assert r3c.decided_fed_code is None and [c.fed_code for c in r3c.candidates][:2] == ["46014", "46010"]
    assert r3c.candidates[1].score == pytest.approx(0.019, abs=0.003)  # shown as the share of the area
    t2p = locate("T2P 1J9", "2023")  # downtown Calgary: Calgary Centre first though 2 % of the area
    assert t2p.decided_fed_code is None and t2p.candidates[0].name_en == "Calgary Centre"
    s4p = locate("S4P 3Y2", "2023")  # downtown Regina: 77 % Moose Jaw—Lake Centre—Lanigan by area
    assert s4p.decided_fed_code is None and s4p.candidates[0].name_en.startswith("Regina")
    assert "Moose Jaw—Lake Centre—Lanigan" in [c.name_en for c in s4p.candidates]


def test_both_orders_side_by_side_share_nothing(geo2013, geo2023):
    for order in ("2013", "2023"):
        ids = set(District.objects.filter(representation_order=order).values_list("pk", flat=True))
        placed = FsaPlacement.objects.filter(representation_order=order).values_list("candidates", flat=True)
        used = {c["district_id"] for rows in placed for c in rows}
        assert used and used <= ids
        decided = set(FsaPlacement.objects.filter(representation_order=order).exclude(decided_fed_code="")
                      .values_list("decided_fed_code", flat=True))
        assert decided <= set(District.objects.filter(representation_order=order).values_list("fed_code", flat=True))
    # NB 13001 exists in both orders, as two districts: a lookup answers in the order asked.
    assert District.objects.filter(fed_code="13001").count() == 2
    assert locate("E1C 4M3", "2013").candidates[0].district_id in set(
        District.objects.filter(representation_order="2013").values_list("pk", flat=True))
