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
