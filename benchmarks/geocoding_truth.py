"""Postal areas placed by the product, checked against a truth computed here, not by the app.

    .venv/bin/python benchmarks/geocoding_truth.py [--representation-order 2023] [--samples 300]
        [--codes "Y1A 6E5" "B1B 1A1" ...]

The truth: every FSA polygon of ``fsa_2021.geojson`` is sampled at random (seeded, uniform in
Canada Atlas Lambert, EPSG:3978) and each point is located by point-in-polygon (shapely) in the
district outlines read straight from ``fed_<order>.geojson`` with ``json`` (no loader, no stored
WKB, no area overlay). The product's answer is ``geo.services.locate`` on the FSA with the
reference data loaded as the demo loads it (`load_reference_districts`). Printed, FSA-weighted
(the reference data has no population per FSA):

- decided: share of the postal areas with a polygon that the participant is not asked about;
- right when wholly inside: among FSAs whose points all fall in one district, the share decided
  for that district (and the share where it is at least the first candidate offered);
- silent-error rate: mean over FSAs of (decided ? share of its points in another district : 0);
- when asked: share of points whose district is offered, offered among the first three, and the
  number of candidates;
- the README's example postal codes (decided or asked, and what).

Django is configured as in benchmarks/geocoding.py (embedded SQLite in a temporary folder unless
DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape

sys.path.insert(0, str(Path(__file__).resolve().parent))
from geocoding import configure  # noqa: E402  (same Django set-up as the lookup benchmark)

README_CODES = ("Y1A 6E5", "B1B 1A1", "J9X 1A1", "A1C 5M2", "H2X 1Y4", "K1A 0A6", "R3C 4T3", "T2P 1J9", "S4P 3Y2")
WHOLLY = 0.999  # an FSA "wholly inside one district": at least this share of its points in it


def truth(data: Path, order: str, samples: int, seed: int) -> dict[str, dict[str, float]]:
    """FSA → {fed_code: share of its random points in that district}, independently of the app."""
    project = Transformer.from_crs("EPSG:4326", "EPSG:3978", always_xy=True)

    def to_3978(geometry: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geometry, lambda xy: np.column_stack(project.transform(xy[:, 0], xy[:, 1])))

    districts = json.loads((data / f"fed_{order}.geojson").read_text(encoding="utf-8"))["features"]
    codes = np.array([str(f["properties"]["fed_code"]) for f in districts])
    provinces = np.array([f["properties"]["province_code"] for f in districts])
    shapes = [shapely.make_valid(to_3978(shape(f["geometry"]))) for f in districts]
    tree = shapely.STRtree(shapes)
    rng = np.random.default_rng(seed)
    result: dict[str, dict[str, float]] = {}
    for feature in json.loads((data / "fsa_2021.geojson").read_text(encoding="utf-8"))["features"]:
        polygon = shapely.make_valid(to_3978(shape(feature["geometry"])))
        shapely.prepare(polygon)
        west, south, east, north = polygon.bounds
        points = np.empty((0, 2))
        for _attempt in range(100):
            batch = np.column_stack([rng.uniform(west, east, samples * 4), rng.uniform(south, north, samples * 4)])
            points = np.concatenate([points, batch[shapely.contains_xy(polygon, batch[:, 0], batch[:, 1])]])
            if len(points) >= samples:
                break
        point_index, district_index = tree.query(shapely.points(points[:samples]), predicate="within")
        # A postal code lies in its own province (outlines of both banks run out into border rivers).
        same = provinces[district_index] == feature["properties"]["province_code"]
        point_index, district_index = point_index[same], district_index[same]
        located = len(np.unique(point_index))
        if not located:
            continue  # all in water beyond every district outline
        counts = np.bincount(district_index, minlength=len(codes))
        result[feature["properties"]["fsa"]] = {codes[i]: counts[i] / located for i in np.flatnonzero(counts)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--representation-order", default="2023")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--codes", nargs="*", default=list(README_CODES))
    args = parser.parse_args()
    order = args.representation_order
    with tempfile.TemporaryDirectory(prefix="floodlight-truth-") as scratch:
        configure(scratch)
        import os

        from django.core.management import call_command

        from studyserver.geo.reference import load_reference_districts
        from studyserver.geo.services import locate

        if "DATABASE_URL" not in os.environ:
            call_command("migrate", verbosity=0)
        started = time.monotonic()
        load_reference_districts(order)
        print(f"reference data ({order}) ready in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        shares = truth(Path(os.environ["FLOODLIGHT_REFERENCE_DATA"]), order, args.samples, args.seed)
        print(f"truth: {len(shares)} FSA polygons x {args.samples} random points, located in "
              f"{time.monotonic() - started:.0f} s (shapely point-in-polygon, EPSG:3978)")

        decided = wrong = 0.0
        wholly = wholly_decided_right = wholly_first = 0
        asked = recall = recall3 = 0.0
        candidates: list[int] = []
        worst: list[tuple[float, str, str]] = []
        for fsa, where in sorted(shares.items()):
            location = locate(f"{fsa} 1A1", order)
            if not location.placeable:
                continue
            home, home_share = max(where.items(), key=lambda item: item[1])
            offered = [c.fed_code for c in location.candidates]
            if location.decided_fed_code:
                decided += 1
                miss = 1.0 - where.get(location.decided_fed_code, 0.0)
                wrong += miss
                if miss > 0:
                    worst.append((miss, fsa, location.decided_fed_code))
            else:
                asked += 1
                recall += sum(where.get(code, 0.0) for code in offered)
                recall3 += sum(where.get(code, 0.0) for code in offered[:3])
                candidates.append(len(offered))
            if home_share >= WHOLLY:
                wholly += 1
                wholly_decided_right += location.decided_fed_code == home
                wholly_first += bool(offered) and offered[0] == home
        total = decided + asked
        print(f"representation order {order}: {int(total)} postal areas with a polygon")
        print(f"  decided without asking:          {decided / total:.1%}")
        print(f"  wholly inside one district:      {wholly} FSAs; decided right {wholly_decided_right / wholly:.1%}, "
              f"right district first (decided or offered first) {wholly_first / wholly:.1%}")
        print(f"  silent-error rate:               {wrong / total:.3%} (decided and wrong, share of points)")
        print(f"  when asked ({int(asked)} FSAs):          right district offered {recall / asked:.2%}, among the "
              f"first three {recall3 / asked:.2%}; {np.mean(candidates):.2f} candidates on average, "
              f"<= 3 candidates {np.mean(np.array(candidates) <= 3):.1%}")
        for miss, fsa, code in sorted(worst, reverse=True)[:5]:
            print(f"  worst decided: {fsa} -> {code}, {miss:.1%} of its points elsewhere: "
                  f"{ {str(k): round(float(v), 3) for k, v in shares[fsa].items()} }")
        print("README examples:")
        for code in args.codes:
            location = locate(code, order)
            where = shares.get(location.fsa or "", {})
            if location.decided_fed_code:
                answer = f"decided {location.decided_fed_code} ({_name(location.candidates, location.decided_fed_code)})"
            elif location.candidates:
                answer = "asked: " + ", ".join(f"{c.name_en} {c.score:.0%} of the area" for c in location.candidates)
            else:
                answer = f"{location.error or 'asked'} ({location.method})"
            print(f"  {code}: {answer}; truth { {str(k): round(float(v), 3) for k, v in where.items()} or 'no polygon'}")


def _name(candidates, fed_code: str) -> str:
    return next((c.name_en for c in candidates if c.fed_code == fed_code), "?")


if __name__ == "__main__":
    main()
