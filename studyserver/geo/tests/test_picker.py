"""The district picker's help: nearby places per candidate and the SVG map (rendered on the server)."""

import xml.etree.ElementTree as ET

from shapely.geometry import box

from studyserver.geo.picker import MapShape, picker_help, render_map
from studyserver.geo.services import locate

SVG = "{http://www.w3.org/2000/svg}"


def test_map_is_valid_svg_with_a_text_alternative_and_numbered_districts():
    shapes = [MapShape(1, "Ouest <&> Nord", box(-75.7, 45.3, -75.5, 45.5)), MapShape(2, "East", box(-75.5, 45.3, -75.3, 45.5))]
    svg = render_map(shapes, box(-75.55, 45.35, -75.45, 45.45), None, 3.0, title="Map of K1B",
                     description="1: Ouest; 2: East")
    root = ET.fromstring(svg)  # well-formed, names escaped
    assert root.get("role") == "img" and root.get("aria-labelledby") == "district-map-title district-map-desc"
    assert root.find(f"{SVG}title").text == "Map of K1B" and root.find(f"{SVG}desc").text == "1: Ouest; 2: East"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["1", "Ouest <&> Nord", "2", "East"]
    paths = list(root.iter(f"{SVG}path"))
    assert len(paths) == 3 and paths[-1].get("stroke-dasharray")  # two districts, then the dashed postal area
    for text in root.iter(f"{SVG}text"):
        assert 0 <= float(text.get("x")) <= 320 and 0 <= float(text.get("y")) <= 240


def test_without_a_polygon_the_centroid_is_marked():
    svg = render_map([MapShape(1, "West", box(-75.7, 45.3, -75.5, 45.5))], None, (-75.6, 45.4), 2.0,
                     title="t", description="d")
    root = ET.fromstring(svg)
    assert [c.get("r") for c in root.iter(f"{SVG}circle")] == ["5", "10"]  # the centre, then the label


def test_montreal_candidates_get_nearby_neighbourhoods_and_shares(geo2013):
    location = locate("H2X 1Y4", "2013")
    codes = [c.fed_code for c in location.candidates]
    help_ = picker_help("H2X", codes, "2013", "fr")
    first, second = help_.candidates
    assert (first.number, second.number) == (1, 2) and first.fed_code == codes[0]
    assert first.share + second.share > 0.99 and first.share > second.share
    assert first.places and second.places and not set(first.places) & set(second.places)
    assert any("Plateau" in place or "Centre-Sud" in place for place in first.places)
    assert second.name.startswith("Ville-Marie")  # the French name
    svg = help_.map_svg(title="Carte", description="1, 2")
    assert svg is not None and ET.fromstring(svg).find(f"{SVG}desc").text == "1, 2"


def test_a_neighbour_listed_most_people_first_still_lends_its_place_to_the_district_holding_its_area(db):
    from studyserver.geo.models import FsaPlacement, PostalArea
    from studyserver.geo.picker import nearby_places

    here = FsaPlacement.objects.create(representation_order="2099", fsa="ZZ1", province_code="AB", lat=51.05,
                                       lon=-114.0, method="area_split")
    # (Made-up FSAs: the reference ones may be committed by another test.) The neighbour's first candidate is the denser district (2 % of its area), the second holds 98 %.
    FsaPlacement.objects.create(representation_order="2099", fsa="ZZ2", province_code="AB", lat=51.06, lon=-114.01,
                                method="area_split", candidates=[
                                    {"fed_code": "48004", "score": 0.02, "people": 0.92},
                                    {"fed_code": "48003", "score": 0.98, "people": 0.08}])
    PostalArea.objects.create(fsa="ZZ2", place_name="Calgary (Beltline)", province_code="AB", lat=51.06, lon=-114.01)
    assert nearby_places(here, ["48003", "48004"], "2099") == {"48003": ["Calgary (Beltline)"], "48004": []}
