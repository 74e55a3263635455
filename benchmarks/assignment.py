"""Concurrent random assignment: assignments/s, duplicates and balance, via simulate_assignments.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/floodlight .venv/bin/python benchmarks/assignment.py
    .venv/bin/python benchmarks/assignment.py --participants 10000 --workers 1,4,8 --mode process

Each configuration runs ``manage.py simulate_assignments --json`` in a fresh process (a throwaway
study in the configured database, purged afterwards) and prints one line per run plus the bar
check: zero duplicates, everyone assigned, max stratum imbalance within one block's share
(= largest block / ratio sum for the default equal ratios). Settings default to
``studyserver.settings_test`` (the local PostgreSQL), like the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(participants: int, workers: int, strata: str, mode: str, seed: int | None) -> dict:
    command = [
        sys.executable,
        "manage.py",
        "simulate_assignments",
        "--participants",
        str(participants),
        "--workers",
        str(workers),
        "--strata",
        strata,
        "--mode",
        mode,
        "--json",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings_test")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"simulate_assignments failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--workers", default="8", help="comma-separated worker counts, e.g. 1,4,8")
    parser.add_argument("--strata", default="province", choices=["province", "none"])
    parser.add_argument("--mode", default="process", choices=["process", "thread"])
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    print(
        f"{'N':>7} {'W':>3} {'mode':>7} {'strata':>8} {'assigned':>9} {'dup':>4} {'imbal':>5} {'block':>5} {'per s':>8}"
    )
    all_ok = True
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        result = run(args.participants, workers, args.strata, args.mode, args.seed)
        bound = result["max_block_size"] // 5  # one block's share per arm (default 1:1:1:1:1)
        ok = (
            result["duplicates"] == 0
            and result["assigned"] == result["participants"]
            and result["max_stratum_imbalance"] <= bound
            and result["errors"] == 0
            and result["sequence_problems"] == 0
        )
        all_ok &= ok
        print(
            f"{result['participants']:>7} {result['workers']:>3} {result['mode']:>7} {args.strata:>8} "
            f"{result['assigned']:>9} {result['duplicates']:>4} {result['max_stratum_imbalance']:>5} "
            f"{result['max_block_size']:>5} {result['assignments_per_second']:>8} {'OK' if ok else 'FAIL'}"
        )
        print("        arm counts: " + json.dumps(result["arm_counts"]))
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
