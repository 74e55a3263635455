"""``manage.py simulate_assignments``: real concurrent draws for synthetic participants.

Contract (keep the names): ``--participants N --workers W [--strata province] [--seed S] --json``
prints ONE JSON object with ``participants, workers, assigned, duplicates, arm_counts {arm: n},
max_stratum_imbalance, assignments_per_second`` (plus ``max_block_size, strata,
sequence_problems, errors, seconds, mode`` to judge them by). ``max_stratum_imbalance`` is, over
all strata, the largest difference between any two arms' counts.

A throwaway study is created in the configured database, its participants are spread over the
provinces in proportion to their 2023 district counts, W worker processes (each with its own
database connection) draw for them at once, and everything is deleted afterwards. The synthetic
participants have no district or treatment images, so the eligibility check is bypassed; the draw
itself is the production ``assign``.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from studyserver.assignment.simulation import simulate


def _multiples(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as error:
        raise CommandError(f"--block-multiples: {error}") from error
    if not values or any(v < 1 for v in values):
        raise CommandError("--block-multiples takes positive integers, e.g. 1,2")
    return values


class Command(BaseCommand):
    help = (
        "Simulate concurrent random assignment in a throwaway study and report balance and speed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--participants", type=int, required=True, help="Synthetic participants (N)."
        )
        parser.add_argument("--workers", type=int, required=True, help="Concurrent workers (W).")
        parser.add_argument("--strata", choices=["province", "none"], default="province")
        parser.add_argument(
            "--seed", type=int, default=None, help="Fixed seed (default: cryptographic RNG)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object and nothing else."
        )
        parser.add_argument(
            "--mode",
            choices=["process", "thread"],
            default="process",
            help="Worker kind (default: OS processes).",
        )
        parser.add_argument(
            "--block-multiples",
            default="",
            help="Block sizes as multiples of the ratio sum, e.g. 1,2 (default).",
        )

    def handle(self, *args, **options):
        if options["participants"] < 1 or options["workers"] < 1:
            raise CommandError("--participants and --workers must be at least 1")
        if options["seed"] is not None and options["seed"] < 0:
            raise CommandError("--seed must be a non-negative integer")
        as_json = options["json"]
        try:
            result = simulate(
                participants=options["participants"],
                workers=options["workers"],
                strata=options["strata"],
                seed=options["seed"],
                mode=options["mode"],
                block_multiples=_multiples(options["block_multiples"])
                if options["block_multiples"]
                else None,
                log=None if as_json else self.stdout.write,
            )
        except FileNotFoundError as error:
            raise CommandError(str(error)) from error
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"assigned {result['assigned']}/{result['participants']} with {result['workers']} workers "
            f"in {result['seconds']} s: {result['assignments_per_second']} assignments/s"
        )
        self.stdout.write(
            "arm counts: " + ", ".join(f"{arm} {n}" for arm, n in result["arm_counts"].items())
        )
        self.stdout.write(
            f"duplicates {result['duplicates']}, errors {result['errors']}, sequence problems "
            f"{result['sequence_problems']}, max stratum imbalance {result['max_stratum_imbalance']} "
            f"over {result['strata']} strata (largest block {result['max_block_size']})"
        )
        ok = (
            result["duplicates"] == 0
            and result["assigned"] == result["participants"]
            and result["errors"] == 0
            and result["sequence_problems"] == 0
        )
        self.stdout.write(self.style.SUCCESS("OK") if ok else self.style.ERROR("PROBLEMS FOUND"))
