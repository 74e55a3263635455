"""The participant-flow benchmark on an earlier commit and on this checkout, one after the other on
the same machine, and both figures printed side by side.

    .venv/bin/python benchmarks/side_by_side.py                          # 93880d1 vs this checkout
    .venv/bin/python benchmarks/side_by_side.py --old 93880d1 --rounds 2 --participants 200 --concurrency 16
    .venv/bin/python benchmarks/side_by_side.py --participants 30 --concurrency 2   # unsaturated: per page

The earlier commit is extracted with ``git archive`` into ``var/side-by-side/<commit>`` and given
a virtual environment of its own, ``var/side-by-side/venv-<commit>``, that sees this checkout's
``.venv`` (a ``.pth`` file) and adds only what the commit's own dependencies pin otherwise (pip,
from the package index, once). Each checkout runs its own ``benchmarks/participant_flow.py --json``
on its own fresh database. Runs alternate old, new, new,
old (ABBA) so that a machine growing busier or quieter does not favour one side. Prints each run,
the means and the ratio new/old; ``--json`` prints one object instead.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import site
import statistics
import subprocess
import sys
import tarfile
import tomllib
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OLD = "93880d1"  # main before issue 21 (the layered architecture on Django's public API)


def extract(commit: str) -> Path:
    """The tree of ``commit`` under var/side-by-side/<full hash> (extracted once)."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout.strip()
    target = REPO / "var" / "side-by-side" / full
    if not (target / "benchmarks" / "participant_flow.py").exists():
        archive = subprocess.run(["git", "archive", "--format=tar", full], cwd=REPO, check=True,
                                 capture_output=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def environment(checkout: Path) -> Path:
    """The Python of ``checkout``: this checkout's packages, and the commit's own pins on top."""
    if checkout == REPO:
        return Path(sys.executable)
    home = checkout.parent / f"venv-{checkout.name}"
    python = home / "bin" / "python"
    stamp = home / ".dependencies-installed"
    if not stamp.exists():
        print(f"== {home}: this checkout's packages, and the dependencies {checkout.name[:7]} pins", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        ours = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(ours, "floodlight-side-by-side.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        pins = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["dependencies"]
        subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True)
        stamp.touch()
    return python


def run_flow(checkout: Path, database: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)  # that checkout's studyserver, not the installed one
    env.setdefault("FLOODLIGHT_REFERENCE_DATA", str(REPO.parent / "shared" / "data"))
    command = [str(environment(checkout)), "benchmarks/participant_flow.py", "--json", "--participants", str(args.participants),
               "--concurrency", str(args.concurrency), "--gunicorn-workers", str(args.gunicorn_workers),
               "--postgres", args.postgres, "--database", database]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: the benchmark failed ({done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{"):])


def summary(result: dict[str, Any]) -> dict[str, Any]:
    by_step = result["page_get_to_healthz_p50_ratio_by_step"]
    worst = max(by_step, key=by_step.get)
    return {
        "participants_per_minute": result["participants_per_minute"],
        "page_get_p50_ms": result["latency"]["page GET"]["p50_ms"],
        "healthz_p50_ms": result["latency"]["healthz"]["p50_ms"],
        "worst_page": worst,
        "worst_page_to_healthz": by_step[worst],
        "by_step": by_step,
        "completed": result["database"]["completed"],
        "duplicate_page_rows": result["database"]["duplicate_page_rows"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=DEFAULT_OLD, help="the earlier commit (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds: each side runs twice per round")
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()

    sides = {"old": extract(args.old), "new": REPO}
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for round_number in range(args.rounds):
        for side in ("old", "new", "new", "old"):
            print(f"== round {round_number + 1}: {side} ({sides[side]})", file=sys.stderr)
            runs[side].append(summary(run_flow(sides[side], f"bench_side_{side}", args)))
            run = runs[side][-1]
            print(f"   {run['participants_per_minute']} participants/min, page GET p50 {run['page_get_p50_ms']} ms, "
                  f"healthz {run['healthz_p50_ms']} ms, worst page {run['worst_page']} "
                  f"{run['worst_page_to_healthz']}x", file=sys.stderr)

    def mean(side: str, field: str) -> float:
        return round(statistics.fmean(run[field] for run in runs[side]), 2)

    result = {
        "old": args.old, "participants": args.participants, "concurrency": args.concurrency,
        "gunicorn_workers": args.gunicorn_workers, "cpu_count": os.cpu_count(), "runs": runs,
        "mean": {side: {field: mean(side, field) for field in
                        ("participants_per_minute", "page_get_p50_ms", "healthz_p50_ms", "worst_page_to_healthz")}
                 for side in runs},
        # every page's ratio to the floor, the median over each side's runs
        "by_step": {side: {step: round(statistics.median(run["by_step"][step] for run in runs[side]), 2)
                           for step in runs[side][0]["by_step"]} for side in runs},
    }
    result["new_over_old_participants_per_minute"] = round(
        result["mean"]["new"]["participants_per_minute"] / result["mean"]["old"]["participants_per_minute"], 3)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.participants} participants, {args.concurrency} at a time, {args.gunicorn_workers} gunicorn workers, "
          f"{os.cpu_count()} cores; old = {args.old}, new = this checkout; runs in the order old new new old")
    print(f"{'':5} {'participants/min':>40} {'page GET p50 ms':>22} {'healthz p50 ms':>20} {'worst page / healthz':>28}")
    for side in ("old", "new"):
        print(f"{side:5} {' '.join(str(r['participants_per_minute']) for r in runs[side]):>40} "
              f"{' '.join(str(r['page_get_p50_ms']) for r in runs[side]):>22} "
              f"{' '.join(str(r['healthz_p50_ms']) for r in runs[side]):>20} "
              f"{' '.join(str(r['worst_page_to_healthz']) for r in runs[side]):>28}")
    for side in ("old", "new"):
        pages = ", ".join(f"{step} {ratio}" for step, ratio in result["by_step"][side].items())
        print(f"{side}: page GET p50 / healthz p50 per page (median of runs): {pages}")
    print(f"mean participants/min: old {result['mean']['old']['participants_per_minute']}, "
          f"new {result['mean']['new']['participants_per_minute']}: new/old "
          f"{result['new_over_old_participants_per_minute']}x")
    print(f"mean worst page / healthz: old {result['mean']['old']['worst_page_to_healthz']}x, "
          f"new {result['mean']['new']['worst_page_to_healthz']}x")


if __name__ == "__main__":
    main()
