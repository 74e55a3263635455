"""Postal code lookups per second: the Django layer (`geo.services.locate`) next to raw pgeocode.

    .venv/bin/python benchmarks/geocoding.py [--n 5000] [--representation-order 2013]

Both run in the same process on the same codes (real FSAs with random last three characters,
plus 10 % malformed inputs). Django is configured here: with no DATABASE_URL it uses the embedded
SQLite default in a temporary folder (migrated and loaded with the reference districts first);
with DATABASE_URL it uses that database (migrated already; the reference districts are loaded if
missing). FLOODLIGHT_REFERENCE_DATA / PGEOCODE_DATA_DIR default to ../shared/data beside the repo.
`locate` returns the district candidates; pgeocode only the centroid — so the comparison is the
cost of our answer against the cheapest possible lookup, not like for like.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def configure(scratch: str) -> None:
    os.environ.setdefault("FLOODLIGHT_REFERENCE_DATA", str(REPO.parent / "shared" / "data"))
    # pgeocode reads PGEOCODE_DATA_DIR when it is imported: set it before anything imports it.
    os.environ.setdefault("PGEOCODE_DATA_DIR", str(Path(os.environ["FLOODLIGHT_REFERENCE_DATA"]) / "pgeocode"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")
    if "DATABASE_URL" not in os.environ:
        os.environ["FLOODLIGHT_EMBEDDED"] = "1"  # embedded SQLite default, in a throw-away folder
        os.environ["FLOODLIGHT_VAR_DIR"] = scratch
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Outside the embedded default a secret key is required; this script serves no requests.
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def sample_codes(fsas: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "ABCEGHJKLMNPRSTVWXYZ"
    codes = []
    for _ in range(n):
        if rng.random() < 0.1:
            # (no empty or blank string: pgeocode raises on those)
            codes.append(rng.choice(["H2X_1Y4", "12345", "H2O 1Y4", "K1A", "ZZZ 999", "W1A 1A1"]))
        else:
            local = f"{rng.choice(string.digits)}{rng.choice(letters)}{rng.choice(string.digits)}"
            codes.append(f"{rng.choice(fsas)} {local}" if rng.random() < 0.5 else f"{rng.choice(fsas)}{local}".lower())
    return codes


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} lookups/s  ({seconds * 1e6 / count:,.1f} µs each, {count} lookups)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--representation-order", default="2013")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="floodlight-bench-") as scratch:
        configure(scratch)
        from django.core.management import call_command
        from django.db import connection

        from studyserver.geo.models import PostalArea
        from studyserver.geo.reference import load_reference_districts
        from studyserver.geo.services import locate

        if "DATABASE_URL" not in os.environ:
            call_command("migrate", verbosity=0)
        started = time.perf_counter()
        loaded = load_reference_districts(args.representation_order)
        if loaded is not None:
            print(f"loaded reference districts and FSA candidates in {time.perf_counter() - started:.1f} s")
        fsas = list(PostalArea.objects.values_list("fsa", flat=True))
        codes = sample_codes(fsas, args.n, args.seed)

        import pgeocode  # after PGEOCODE_DATA_DIR is set

        nominatim = pgeocode.Nominatim("ca")  # reads the local CA.txt: no download
        locate(codes[0], args.representation_order)  # warm the connection
        nominatim.query_postal_code(codes[0])

        start = time.perf_counter()
        decided = asked = invalid = 0
        for code in codes:
            location = locate(code, args.representation_order)
            if not location.valid or not location.placeable:
                invalid += 1
            elif location.decided_fed_code:
                decided += 1
            else:
                asked += 1
        django_seconds = time.perf_counter() - start

        start = time.perf_counter()
        found = 0
        for code in codes:
            found += not math.isnan(nominatim.query_postal_code(code).latitude)
        pgeocode_seconds = time.perf_counter() - start

        start = time.perf_counter()
        nominatim.query_postal_code(codes)
        pgeocode_batch_seconds = time.perf_counter() - start

        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), "
              f"representation order {args.representation_order}")
        print(f"Django locate() (candidates, one query each):  {rate(len(codes), django_seconds)}")
        print(f"raw pgeocode, one code per call (centroid):    {rate(len(codes), pgeocode_seconds)}")
        print(f"raw pgeocode, all codes in one batch call:     {rate(len(codes), pgeocode_batch_seconds)}")
        print(f"outcomes: locate: {decided} decided, {asked} asked, {invalid} invalid or unplaceable; "
              f"pgeocode found a centroid for {found} (it does not normalize 'h2x1y4'-style input)")


if __name__ == "__main__":
    main()
