"""National Address Register loader: addresses per second and peak memory on a generated file.

    .venv/bin/python benchmarks/address_loader.py [--rows 1000000] [--files 4] [--keep DIR]

Generates a register sample in the real layout (all 29 columns; addresses clustered into postal
codes inside the reference 2013 districts, ~20 % of codes across a boundary, 10 % offices) as
``Address_N.csv`` files, then reads them in a child process exactly as ``load_addresses`` does
(chunked pandas reading, vectorized point-in-polygon, per-code counting; without the database
write) and prints rows/s and the child's peak resident memory, next to its memory before reading
(the districts alone). No Django: FLOODLIGHT_REFERENCE_DATA (default ../shared/data) gives the
boundaries.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def districts():
    from studyserver.geo.candidates import DistrictShape
    from studyserver.geo.loaders import read_district_source

    folder = Path(os.environ.get("FLOODLIGHT_REFERENCE_DATA") or REPO.parent / "shared" / "data")
    source = read_district_source(folder / "fed_2013.geojson")
    return [DistrictShape(r.fed_code, r.province_code, r.geometry) for r in source.records]


def generate(folder: Path, rows: int, files: int) -> None:
    from studyserver.geo.samples import generate_register, write_register

    per_code = 30
    codes = max(1, rows // int(per_code * 1.1))  # 10 % offices come on top
    started = time.monotonic()
    sample = generate_register(districts(), whole_codes=codes - codes // 5, split_codes=codes // 5,
                               addresses_per_code=per_code, seed=2024)
    write_register(sample.frame, folder, files=files)
    (folder / "truth.json").write_text(json.dumps({code: [t.kind, t.residential_shares]
                                                   for code, t in sample.truth.items()}))
    size = sum(p.stat().st_size for p in folder.glob("Address_*.csv"))
    print(f"generated {len(sample.frame):,} rows, {len(sample.truth):,} postal codes, {size / 1e6:.0f} MB "
          f"in {time.monotonic() - started:.0f} s")


def peak_rss_kb() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over an
    exec, so a child started by a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(folder: Path) -> None:
    from studyserver.geo.addresses import read_addresses

    shapes = districts()
    before = peak_rss_kb()
    counts = read_addresses(folder, shapes)
    after = peak_rss_kb()
    result = {"rows": counts.rows, "placed": counts.placed, "postal_codes": len(counts.postal_codes),
              "seconds": counts.seconds, "rss_before_mb": before / 1024, "rss_peak_mb": after / 1024}
    truth_file = folder / "truth.json"
    if truth_file.exists():
        result["accuracy"] = accuracy(json.loads(truth_file.read_text()), counts.postal_codes)
    print(json.dumps(result))


def accuracy(truth: dict, placed: dict) -> dict:
    """Decisions at the default threshold against the generator's own point-in-polygon truth."""
    from studyserver.geo.addresses import DEFAULT_POSTAL_CODE_THRESHOLD

    whole_right = whole = split_asked = split = split_recalled = 0
    candidates = []
    for code, (kind, shares) in truth.items():
        weights = placed.get(code, [])
        total = sum(w for _c, w in weights) or 1.0
        decided = weights[0][0] if weights and weights[0][1] / total >= DEFAULT_POSTAL_CODE_THRESHOLD else None
        if kind == "whole":
            whole += 1
            whole_right += decided == next(iter(shares))
        else:
            split += 1
            split_asked += decided is None
            offered = {c for c, _w in weights}
            split_recalled += set(shares) <= offered
            candidates.append(len(offered))
    return {"whole": whole, "whole_right": whole_right, "split": split, "split_asked": split_asked,
            "split_all_true_offered": split_recalled, "mean_candidates": sum(candidates) / max(len(candidates), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--keep", default=None, help="Folder for the generated files (reused when present).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(Path(options.child))
        return
    with tempfile.TemporaryDirectory(prefix="floodlight-nar-") as scratch:
        folder = Path(options.keep or scratch)
        if not list(folder.glob("Address_*.csv")):
            generate(folder, options.rows, options.files)
        result = subprocess.run([sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True,
                                check=True)
        data = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"read {data['rows']:,} rows ({data['placed']:,} residential addresses placed, "
          f"{data['postal_codes']:,} postal codes) in {data['seconds']:.1f} s: "
          f"{data['rows'] / data['seconds']:,.0f} addresses/s")
    if "accuracy" in data:
        a = data["accuracy"]
        print(f"decided right: {a['whole_right']:,}/{a['whole']:,} one-district codes "
              f"({a['whole_right'] / max(a['whole'], 1):.2%}); asked: {a['split_asked']:,}/{a['split']:,} split codes, "
              f"every true district offered for {a['split_all_true_offered']:,}, {a['mean_candidates']:.2f} candidates")
    print(f"peak memory {data['rss_peak_mb']:.0f} MB (districts alone: {data['rss_before_mb']:.0f} MB; "
          f"streaming added {data['rss_peak_mb'] - data['rss_before_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
