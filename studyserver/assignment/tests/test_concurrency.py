"""Hammer assign() from many threads and OS processes on the real database (committed data)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, connections

from studyserver.assignment.models import AllocationSlot, Assignment, StratumCursor
from studyserver.assignment.services import (
    allocation_table,
    assign,
    max_stratum_imbalance,
    verify_sequence,
)
from studyserver.assignment.simulation import duplicate_count, run_workers
from studyserver.studies.models import Study

from .helpers import make_participants, make_study

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row-lock concurrency needs PostgreSQL"
    ),
]

REPO = Path(__file__).resolve().parents[3]
CONTRACT_KEYS = {
    "participants",
    "workers",
    "assigned",
    "duplicates",
    "arm_counts",
    "max_stratum_imbalance",
    "assignments_per_second",
}


def _check_sequence_integrity(study: Study, expected: int) -> None:
    scheme = study.allocation_scheme
    assert Assignment.objects.filter(study=study).count() == expected
    assert verify_sequence(scheme) == []  # blocks balanced, no slot skipped, arms match slots
    for cursor in StratumCursor.objects.filter(scheme=scheme):
        positions = sorted(
            Assignment.objects.filter(study=study, stratum=cursor.stratum).values_list(
                "sequence_position", flat=True
            )
        )
        assert positions == list(range(1, cursor.next_position))
        assert (
            AllocationSlot.objects.filter(scheme=scheme, stratum=cursor.stratum).count()
            == cursor.slots_generated
        )
    # Blocks of 5 or 10 with equal ratios: two arms never differ by more than 2 within a stratum.
    assert max_stratum_imbalance(allocation_table(study)) <= 2


def test_threads_hammering_the_same_participants():
    study = make_study(seed=77)
    people = (
        make_participants(study, 60, "ON")
        + make_participants(study, 40, "QC")
        + make_participants(study, 20, "PE")
    )
    threads_count = 6
    seen: dict[str, set[tuple[str, int]]] = defaultdict(set)
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_count)

    def hammer(order_seed: int) -> None:
        order = list(people)
        random.Random(order_seed).shuffle(order)  # every thread asks for every participant
        try:
            start.wait()
            for participant in order:
                result = assign(participant, verify_eligibility=False)
                with lock:
                    seen[str(participant.pk)].add((result.arm, result.slot_id))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == len(people)
    assert all(
        len(answers) == 1 for answers in seen.values()
    )  # one arm per participant, whoever asked
    _check_sequence_integrity(study, len(people))
    assert Counter(Assignment.objects.filter(study=study).values_list("stratum", flat=True)) == {
        "ON": 60,
        "QC": 40,
        "PE": 20,
    }


def test_processes_hammering_the_same_participants():
    study = make_study()
    people = make_participants(study, 50, "NB") + make_participants(study, 30, "SK")
    requests = [str(p.pk) for p in people] * 3  # each participant requested by several processes
    random.Random(5).shuffle(requests)
    report, seconds = run_workers(requests, workers=4, mode="process")
    assert report.errors == []
    assert len(report.draws) == len(requests)
    assert duplicate_count(study, report.draws) == 0
    assert len({pid: arm for pid, arm, _ in report.draws}) == len(people)
    assert (
        len(
            {
                host_pid
                for host_pid in Assignment.objects.filter(study=study).values_list(
                    "assigned_by", flat=True
                )
            }
        )
        > 1
    )
    _check_sequence_integrity(study, len(people))


def test_simulate_assignments_command_contract():
    out = StringIO()
    call_command("simulate_assignments", participants=200, workers=3, seed=3, json=True, stdout=out)
    result = json.loads(out.getvalue())
    assert set(result) >= CONTRACT_KEYS
    assert result["participants"] == 200 and result["workers"] == 3
    assert result["assigned"] == 200 and result["duplicates"] == 0
    assert sum(result["arm_counts"].values()) == 200
    assert set(result["arm_counts"]) == {
        "control",
        "distant",
        "house",
        "district_landmark",
        "provincial_landmark",
    }
    assert 0 <= result["max_stratum_imbalance"] <= result["max_block_size"] // 5
    assert result["assignments_per_second"] > 0
    assert result["errors"] == 0 and result["sequence_problems"] == 0
    assert (
        result["strata"] == 13
    )  # 400 people over 343 districts reach every province and territory
    # The throwaway study is gone.
    assert not Study.objects.filter(slug__startswith="simulation-").exists()
    assert not Assignment.objects.exists()


def test_simulate_assignments_in_a_subprocess_human_and_json():
    database = connection.settings_dict
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studyserver.settings_test",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    )
    command = [
        sys.executable,
        "manage.py",
        "simulate_assignments",
        "--participants",
        "100",
        "--workers",
        "2",
    ]
    done = subprocess.run(
        [*command, "--strata", "province", "--seed", "9", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert set(result) >= CONTRACT_KEYS
    assert (result["assigned"], result["duplicates"], result["workers"]) == (100, 0, 2)
    human = subprocess.run(
        [*command, "--mode", "thread", "--strata", "none"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert human.returncode == 0, human.stderr
    assert "assigned 100/100" in human.stdout and "OK" in human.stdout
    assert not Study.objects.filter(slug__startswith="simulation-").exists()
