"""load_districts on GeoJSON / shapefile (zip, folder) / names-only CSV, with the errors it must give."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapefile
import shapely
from django.conf import settings
from django.core.management import CommandError, call_command
from pyproj import CRS, Transformer
from shapely.geometry import mapping, shape

from studyserver.geo.models import District, FsaPlacement

PEI = ("11001", "11002", "11003", "11004")  # Prince Edward Island: 4 small districts, 7 FSAs


def _pei_features() -> list[dict]:
    document = json.loads((Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.geojson").read_text())
    return [f for f in document["features"] if str(f["properties"]["fed_code"]) in PEI]


def _to_statcan(geometry: shapely.Geometry) -> shapely.Geometry:
    transformer = Transformer.from_crs(4326, 3347, always_xy=True)
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _write_shapefile(folder: Path, features: list[dict], *, prj: bool = True, fields=("FED_NUM", "ED_NAMEE", "ED_NAMEF")) -> Path:
    """Like the official Elections Canada file: EPSG:3347, FED_NUM / ED_NAMEE / ED_NAMEF."""
    base = folder / "FED_CA_TEST"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON) as writer:
        for name in fields:
            writer.field(name, "C", size=100)
        for feature in features:
            properties = feature["properties"]
            writer.record(str(properties["fed_code"]), properties["name_en"], properties["name_fr"])
            writer.shape(mapping(_to_statcan(shape(feature["geometry"]))))
    if prj:
        base.with_suffix(".prj").write_text(CRS.from_epsg(3347).to_wkt("WKT1_ESRI"))
    return base.with_suffix(".shp")


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"FED_CA_TEST/{path.name}")
    return target


def _without_order(order: str) -> None:
    """Inside the test's transaction (rolled back after): another test may have committed the reference order."""
    FsaPlacement.objects.filter(representation_order=order).delete()
    District.objects.filter(representation_order=order).delete()


def _load(*args, **options) -> str:
    out = io.StringIO()
    call_command("load_districts", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_official_style_shapefile_zip_in_epsg3347_is_reprojected_and_idempotent(tmp_path):
    _without_order("2023")
    shp_folder = tmp_path / "shp"
    shp_folder.mkdir()
    _write_shapefile(shp_folder, _pei_features())
    archive = _zip_folder(shp_folder, tmp_path / "FED_CA_TEST.zip")

    output = _load(str(archive), representation_order="2023")
    assert "4 created" in output and "read 4/4 records" in output  # progress is printed
    charlottetown = District.objects.get(representation_order="2023", fed_code="11002")
    assert charlottetown.province_code == "PE"  # derived from the fed_code: no province column
    assert -64.5 < charlottetown.min_lon < charlottetown.max_lon < -61.9  # back in degrees
    assert 45.9 < charlottetown.min_lat < charlottetown.max_lat < 47.1
    assert charlottetown.geometry().is_valid
    original = shape(next(f for f in _pei_features() if f["properties"]["fed_code"] == 11002)["geometry"])
    assert charlottetown.geometry().symmetric_difference(original).area < 1e-6 * max(original.area, 1)
    assert FsaPlacement.objects.filter(representation_order="2023", fsa__startswith="C").count() == 7
    placed = FsaPlacement.objects.get(representation_order="2023", fsa="C1A")  # Charlottetown
    assert "11002" in {c["fed_code"] for c in placed.candidates}

    again = _load(str(shp_folder), representation_order="2023")  # the folder works too
    assert "0 created, 0 updated, 4 unchanged" in again
    assert District.objects.filter(representation_order="2023").count() == 4


@pytest.mark.django_db
def test_geojson_in_a_named_projected_crs(tmp_path):
    _without_order("2023")
    features = []
    for feature in _pei_features():
        features.append({**feature, "geometry": mapping(_to_statcan(shape(feature["geometry"])))})
    path = tmp_path / "pei.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3347"}}}))
    _load(str(path), representation_order="2023", skip_candidates=True)
    district = District.objects.get(representation_order="2023", fed_code="11001")
    assert -64.5 < district.min_lon < -61.9 and district.area_km2 > 100


@pytest.mark.django_db
def test_missing_field_unknown_crs_and_missing_prj_are_clear_errors(tmp_path):
    _without_order("2023")
    folder = tmp_path / "renamed"
    folder.mkdir()
    _write_shapefile(folder, _pei_features()[:1], fields=("NUMBER", "ED_NAMEE", "ED_NAMEF"))
    with pytest.raises(CommandError, match=r"missing field fed_code .*--field"):
        _load(str(folder), representation_order="2023")
    _load(str(folder), "--field", "fed_code=NUMBER", representation_order="2023", skip_candidates=True)
    assert District.objects.filter(representation_order="2023", fed_code="11001").exists()

    bad_crs = tmp_path / "badcrs"
    bad_crs.mkdir()
    shp = _write_shapefile(bad_crs, _pei_features()[:1])
    shp.with_suffix(".prj").write_text('PROJCS["made up",NONSENSE[]]')
    with pytest.raises(CommandError, match="unknown coordinate reference system"):
        _load(str(shp), representation_order="2023")

    no_prj = tmp_path / "noprj"
    no_prj.mkdir()
    _write_shapefile(no_prj, _pei_features()[:1], prj=False)
    with pytest.raises(CommandError, match="--source-crs"):
        _load(str(no_prj), representation_order="2023")
    _load(str(no_prj), representation_order="2023", source_crs="EPSG:3347", skip_candidates=True)

    geojson = tmp_path / "crs.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:999999"}},
                                   "features": _pei_features()[:1]}))
    with pytest.raises(CommandError, match="unknown coordinate reference system"):
        _load(str(geojson), representation_order="2023")


@pytest.mark.django_db
def test_broken_geometry_is_repaired_and_reported(tmp_path):
    _without_order("2023")
    bowtie = {"type": "Polygon", "coordinates": [[[-63.2, 46.2], [-63.0, 46.4], [-63.0, 46.2], [-63.2, 46.4], [-63.2, 46.2]]]}
    features = [{"type": "Feature", "geometry": bowtie,
                 "properties": {"fed_code": "11002", "name_en": "Charlottetown", "name_fr": "Charlottetown",
                                "province_code": "PE"}}]
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    output = _load(str(path), representation_order="2023", skip_candidates=True)
    assert "district 11002: repaired broken geometry (Self-intersection" in output
    geometry = District.objects.get(representation_order="2023", fed_code="11002").geometry()
    assert geometry.is_valid and geometry.area > 0

    line = {"type": "LineString", "coordinates": [[-63.2, 46.2], [-63.0, 46.4]]}
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "features": [{**features[0], "geometry": line}]}))
    with pytest.raises(CommandError, match="broken geometry that make_valid cannot repair"):
        _load(str(path), representation_order="2023")


@pytest.mark.django_db
def test_names_only_csv_and_bad_rows(tmp_path):
    _without_order("2023")
    output = _load(str(Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.csv"), representation_order="2023")
    assert "343 created" in output and "province 1650" in output  # every placeable FSA picks in its province
    assert District.objects.filter(representation_order="2023", geometry_wkb__isnull=True).count() == 343
    assert District.objects.get(representation_order="2023", fed_code="24001").province_code == "QC"
    ids = dict(District.objects.filter(representation_order="2023").values_list("fed_code", "pk"))

    # Upgrading a database seeded before the boundaries shipped: the same rows gain them (so the
    # participants, photos and representatives that point at a district keep it) and the FSAs are re-placed.
    output = _load(str(Path(settings.FLOODLIGHT_REFERENCE_DATA) / "fed_2023.geojson"))
    assert "districts (2023): 0 created, 343 updated" in output
    assert dict(District.objects.filter(representation_order="2023").values_list("fed_code", "pk")) == ids
    assert not District.objects.filter(representation_order="2023", geometry_wkb__isnull=True).exists()
    placed = FsaPlacement.objects.filter(representation_order="2023", placeable=True)
    assert placed.exclude(decided_fed_code="").exists() and not placed.filter(method="province").exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("fed_code,name_en,name_fr,province_code\n35001,Somewhere,Quelque part,QC\n")
    with pytest.raises(CommandError, match="disagrees with fed_code 35001"):
        _load(str(bad), representation_order="2023")
    bad.write_text("fed_code,name_en\n3500,Somewhere\n")
    with pytest.raises(CommandError, match="not a 5-digit district number"):
        _load(str(bad), representation_order="2023")
    with pytest.raises(CommandError, match="no such file"):
        _load(str(tmp_path / "nothing.geojson"), representation_order="2023")


@pytest.mark.django_db
def test_fsa_centroids_from_the_raw_geonames_dump_merge_repeated_fsas():
    from studyserver.geo.loaders import read_fsa_centroids

    raw = read_fsa_centroids(Path(settings.FLOODLIGHT_REFERENCE_DATA) / "geonames_CA.txt")
    cached = read_fsa_centroids(settings.PGEOCODE_DATA_DIR)
    assert raw == cached and len(raw) == 1651
    l9x = next(r for r in raw if r.fsa == "L9X")  # Barrie, Minesing, Midhurst, Springwater
    assert 5 < l9x.spread_km < 20 and "Minesing" in l9x.place_name
    assert {r.province_code for r in raw if r.fsa.startswith("X")} == {"NT", "NU"}


def test_windows_1252_characters_mis_decoded_in_the_source_are_repaired(geo2013):
    from studyserver.geo.loaders import clean_name
    from studyserver.geo.models import District

    assert clean_name("Île-des-S\x9curs") == "Île-des-Sœurs"
    assert clean_name(" Île d\x92Orléans ") == "Île d’Orléans"
    assert clean_name("Abitibi—Témiscamingue") == "Abitibi—Témiscamingue"  # real text untouched
    assert clean_name("Banff--Airdrie") == clean_name("Banff -- Airdrie") == "Banff—Airdrie"  # the 2013 file's ASCII
    assert clean_name("Saint-Laurent") == "Saint-Laurent"  # a hyphen stays a hyphen
    names = District.objects.filter(representation_order="2013").values_list("name_en", "name_fr")
    assert not [pair for pair in names if any(0x80 <= ord(c) < 0xA0 for c in "".join(pair))]
    assert District.objects.get(representation_order="2013", name_fr__contains="Sœurs")


def test_the_2013_files_ascii_dashes_are_shown_as_the_official_em_dash_and_codes_stay_exact(geo2013):
    banff = District.objects.get(representation_order="2013", fed_code="48001")
    assert (banff.name_en, banff.name_fr) == ("Banff—Airdrie", "Banff—Airdrie")
    names = District.objects.filter(representation_order="2013").values_list("name_en", "name_fr")
    assert not [pair for pair in names if "--" in "".join(pair)]
    assert District.objects.filter(representation_order="2013", name_en__contains="—").count() > 150
    placed = FsaPlacement.objects.filter(representation_order="2013").exclude(candidates=[]).values_list(
        "candidates", flat=True)
    assert not [c for rows in placed for c in rows if "--" in c["name_en"] + c["name_fr"]]


@pytest.mark.django_db
def test_the_order_defaults_to_the_one_the_file_declares_and_a_contradicting_one_is_refused(tmp_path):
    _without_order("2013")
    _without_order("2023")
    path = tmp_path / "pei.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": _pei_features()}))
    _load(str(path), skip_candidates=True)  # no --representation-order: the file says 2023
    district = District.objects.get(representation_order="2023", fed_code="11002")
    assert district.population and 0 < district.density_km2 < 1000  # adults_2021 per official km²
    with pytest.raises(CommandError, match="holds districts of the 2023 representation order, not 2013"):
        _load(str(path), representation_order="2013")
    assert not District.objects.filter(representation_order="2013").exists()
    undeclared = [{**f, "properties": {k: v for k, v in f["properties"].items() if k != "rep_order"}}
                  for f in _pei_features()]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": undeclared}))
    _load(str(path), representation_order="2013", skip_candidates=True)  # an undeclared file loads as asked
    assert District.objects.filter(representation_order="2013").count() == 4
