"""Concurrent assignment simulation: synthetic participants drawn by many processes at once.

Used by ``manage.py simulate_assignments`` and ``benchmarks/assignment.py``. Everything happens in
a throwaway study inside the real database, purged afterwards. Synthetic participants have no
district and no treatment material, so their draws skip the eligibility check
(``assign(..., verify_eligibility=False)``); everything else is the production path.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import queue
import random
import secrets
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction

from studyserver.geo.models import District
from studyserver.studies.models import Study

from .models import AllocationScheme, AllocationSlot, Assignment, StratumCursor, participant_model
from .workers import Draw, WorkerReport, draw_all, process_worker

SIMULATION_SLUG_PREFIX = "simulation-"

def province_district_counts(representation_order: str = "2023") -> dict[str, int]:
    """Districts per province: from the District table when the order is loaded, else the CSV."""
    rows = District.objects.filter(representation_order=representation_order).values_list(
        "province_code", flat=True
    )
    counts = Counter(rows)
    if counts:
        return dict(sorted(counts.items()))
    path = Path(settings.FLOODLIGHT_REFERENCE_DATA or "") / f"fed_{representation_order}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"No {representation_order} districts in the database and no {path}: "
            "set FLOODLIGHT_REFERENCE_DATA to the reference data folder."
        )
    with path.open(newline="", encoding="utf-8") as handle:
        counts = Counter(row["province_code"] for row in csv.DictReader(handle))
    return dict(sorted(counts.items()))


def proportional_counts(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder; ties by key order)."""
    weight_sum = sum(weights.values())
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    counts = {key: int(value) for key, value in exact.items()}
    leftover = total - sum(counts.values())
    by_remainder = sorted(weights, key=lambda key: (-(exact[key] - counts[key]), key))
    for key in by_remainder[:leftover]:
        counts[key] += 1
    return counts


def create_throwaway_study(
    participants: int, strata: str, seed: int | None, block_multiples: Sequence[int] | None
) -> tuple[Any, AllocationScheme, list[str]]:
    """A closed simulation study, its scheme and ``participants`` placed synthetic participants
    spread over the provinces in proportion to their district counts. Returns their ids in a
    random arrival order (seeded when ``seed`` is given)."""
    Participant = participant_model()
    per_province = proportional_counts(participants, province_district_counts())
    with transaction.atomic():
        study = Study.objects.create(
            slug=f"{SIMULATION_SLUG_PREFIX}{uuid.uuid4().hex[:16]}",
            title="Assignment simulation (throwaway)",
            is_open=False,
        )
        scheme_fields: dict[str, Any] = {"strata": strata, "seed": seed, "is_simulation": True}
        if block_multiples:
            scheme_fields["block_multiples"] = list(block_multiples)
        scheme = AllocationScheme.objects.create(study=study, **scheme_fields)
        rows = [
            Participant(study=study, state=Participant.State.PLACED, province_code=province)
            for province, n in per_province.items()
            for _ in range(n)
        ]
        Participant.objects.bulk_create(rows, batch_size=2000)
    ids = [str(row.pk) for row in rows]
    shuffler = random.Random(seed) if seed is not None else secrets.SystemRandom()
    shuffler.shuffle(ids)
    return study, scheme, ids


def purge_throwaway_study(study: Any) -> None:
    """Delete a simulation study and everything drawn in it. Refuses any other study: this is
    the one delete path for allocation records, and only for ``is_simulation`` schemes."""
    Participant = participant_model()
    scheme = AllocationScheme.objects.get(study=study)
    if not scheme.is_simulation or not study.slug.startswith(SIMULATION_SLUG_PREFIX):
        raise PermissionError(
            f"{study.slug} is not a simulation study; its allocation records are kept."
        )
    with transaction.atomic():
        # _raw_delete: one DELETE statement each, bypassing the append-only ORM guard on purpose.
        Assignment.objects.filter(study=study)._raw_delete(connection.alias)
        AllocationSlot.objects.filter(scheme=scheme)._raw_delete(connection.alias)
        StratumCursor.objects.filter(scheme=scheme)._raw_delete(connection.alias)
        AllocationScheme.objects.filter(pk=scheme.pk)._raw_delete(connection.alias)
        # Synthetic participants have nothing attached; a raw delete of them and of the study fails
        # loudly (foreign key) rather than cascading if anything else ever referenced them.
        Participant.objects.filter(study=study)._raw_delete(connection.alias)
        type(study).objects.filter(pk=study.pk)._raw_delete(connection.alias)


def run_workers(
    participant_ids: list[str],
    workers: int,
    mode: str = "process",
    progress: Callable[[], None] | None = None,
) -> tuple[WorkerReport, float]:
    """Draw for every participant with ``workers`` concurrent workers (OS processes with their
    own connections, or threads). Returns the merged report and the drawing time in seconds,
    measured from the moment every worker is connected and ready."""
    chunks = [participant_ids[index::workers] for index in range(workers)]
    merged = WorkerReport()
    if mode == "thread":
        barrier = threading.Barrier(workers + 1)
        reports = [WorkerReport() for _ in chunks]

        def thread_main(chunk: list[str], report: WorkerReport) -> None:
            try:
                connections["default"].ensure_connection()
                barrier.wait()
                draw_all(chunk, report)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=thread_main, args=pair)
            for pair in zip(chunks, reports, strict=True)
        ]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=1.0)
            if progress:
                progress()
        elapsed = time.perf_counter() - started
        for report in reports:
            merged.draws.extend(report.draws)
            merged.errors.extend(report.errors)
        return merged, elapsed

    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    database = dict(connection.settings_dict)
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "studyserver.settings")
    processes = [
        context.Process(
            target=process_worker,
            args=(settings_module, database, chunk, ready, start, results),
            daemon=True,
        )
        for chunk in chunks
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            _wait_for(ready, processes, "start")
        start.set()
        started = time.perf_counter()
        for _ in processes:
            draws, errors = _wait_for(results, processes, "report", progress)
            merged.draws.extend(draws)
            merged.errors.extend(errors)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return merged, elapsed


def _wait_for(
    channel: Any, processes: Sequence[Any], what: str, progress: Callable[[], None] | None = None
) -> Any:
    """The next message on ``channel``; fails fast if every worker process has died."""
    while True:
        try:
            return channel.get(timeout=1.0)
        except queue.Empty:
            if progress:
                progress()
            if not any(process.is_alive() for process in processes) and channel.empty():
                raise RuntimeError(f"worker processes died before they could {what}") from None


def duplicate_count(study: Any, draws: Sequence[Draw]) -> int:
    """Participants holding more than one arm or slot, plus slots handed to more than one
    participant — from what the workers were told and from the database."""
    arms_told: dict[str, set[tuple[str, int]]] = defaultdict(set)
    holders_of_slot: dict[int, set[str]] = defaultdict(set)
    for participant_id, arm, slot_id in draws:
        arms_told[participant_id].add((arm, slot_id))
        holders_of_slot[slot_id].add(participant_id)
    told = sum(len(v) - 1 for v in arms_told.values()) + sum(
        len(v) - 1 for v in holders_of_slot.values()
    )
    rows = Assignment.objects.filter(study=study)
    stored_participants = Counter(rows.values_list("participant_id", flat=True))
    stored_slots = Counter(rows.values_list("slot_id", flat=True))
    stored = sum(n - 1 for n in stored_participants.values()) + sum(
        n - 1 for n in stored_slots.values()
    )
    return told + stored


def simulate(
    participants: int,
    workers: int,
    strata: str = "province",
    seed: int | None = None,
    mode: str = "process",
    block_multiples: Sequence[int] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one simulation and return the command's JSON object (see the command's help)."""
    from .services import allocation_table, arm_totals, max_stratum_imbalance, verify_sequence

    say = log or (lambda message: None)
    study, scheme, participant_ids = create_throwaway_study(
        participants, strata, seed, block_multiples
    )
    try:
        say(
            f"study {study.slug}: {participants} participants, strata {strata}, "
            f"blocks {scheme.block_sizes}, {'seed ' + str(seed) if seed is not None else 'cryptographic RNG'}"
        )
        say(f"starting {workers} worker {'threads' if mode == 'thread' else 'processes'}…")
        last = [time.perf_counter()]

        def progress() -> None:
            if log and time.perf_counter() - last[0] >= 2.0:
                last[0] = time.perf_counter()
                say(f"  assigned {Assignment.objects.filter(study=study).count()}/{participants}")

        report, elapsed = run_workers(participant_ids, workers, mode, progress if log else None)
        table = allocation_table(study)
        problems = verify_sequence(scheme)
        result = {
            "participants": participants,
            "workers": workers,
            "assigned": Assignment.objects.filter(study=study)
            .values("participant_id")
            .distinct()
            .count(),
            "duplicates": duplicate_count(study, report.draws),
            "arm_counts": arm_totals(table, scheme.arms),
            "max_stratum_imbalance": max_stratum_imbalance(table),
            "assignments_per_second": round(len(report.draws) / elapsed, 1) if elapsed > 0 else 0.0,
            # Beyond the contract's fields: what a reader needs to judge them.
            "max_block_size": max(scheme.block_sizes),
            "strata": len(table),
            "sequence_problems": len(problems),
            "errors": len(report.errors),
            "seconds": round(elapsed, 3),
            "mode": mode,
        }
        for line in problems[:5] + report.errors[:5]:
            say(f"  problem: {line}")
        return result
    finally:
        purge_throwaway_study(study)
        say(f"throwaway study {study.slug} purged")
