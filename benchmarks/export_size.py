"""Time the export on a large synthetic study, in a throwaway PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/floodlight \\
        .venv/bin/python benchmarks/export_size.py --n 100000 [--formats csv parquet dta xlsx]

Creates ``test_<name>_exportbench``, migrates it, bulk-inserts N participants (80 % assigned, 12
page submissions each for completers), prints the time of ``build_export`` (and of the quality
flags it computes) and of each format, and
drops the database. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# A benchmark, not part of the platform: run from the checkout, it imports the apps it fills.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _setup_django() -> None:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/floodlight")
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1] + "_exportbench"
    os.environ["DJANGO_SETTINGS_MODULE"] = "studyserver.settings_test"
    import django

    django.setup()


def populate(n: int, seed: int = 7) -> object:
    import numpy as np

    from studyserver.assignment.models import AllocationScheme, AllocationSlot, Assignment
    from studyserver.geo.models import District
    from studyserver.instrument.definition import get_instrument
    from studyserver.studies.arms import ARMS
    from studyserver.studies.models import Study
    from studyserver.survey.models import Exposure, PageSubmission, Participant, PersonalData
    from studyserver.treatments.models import SourcePhoto, Stimulus

    rng = np.random.default_rng(seed)
    instrument = get_instrument()
    study = Study.objects.create(slug="bench", title="Bench")
    districts = District.objects.bulk_create(
        District(representation_order="2023", fed_code=str(10001 + i), name_en=f"District {i}",
                 name_fr=f"Circonscription {i}", province_code="QC" if i % 3 else "ON")
        for i in range(50)
    )
    stimuli = []
    for i, district in enumerate(districts[:10]):
        source = SourcePhoto.objects.create(kind="house", district=district, place_name_en=f"P{i}",
                                            image="x.png")
        stimuli.append(Stimulus.objects.create(source=source, status="approved",
                                               backend="reference", model_version=f"v{i}"))
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    states = rng.choice(["completed", "assigned", "screened_out", "started", "withdrawn"], n,
                        p=[0.72, 0.08, 0.12, 0.07, 0.01])
    people = []
    for i in range(n):
        district = districts[i % len(districts)]
        people.append(Participant(
            study=study, state=states[i], language="fr" if i % 4 == 0 else "en",
            screenout_reason="not_canadian" if states[i] == "screened_out" else "",
            fsa="H2X", province_code=district.province_code, district=district,
            district_method="certain", consent_version="1.0", instrument_version=instrument.version,
            attention_passed=bool(i % 10), consented_at=t0, token=f"bench-{i}",
            completed_at=t0 + timedelta(minutes=12) if states[i] == "completed" else None,
        ))
    Participant.objects.bulk_create(people, batch_size=5000)
    scheme = AllocationScheme.objects.create(study=study)
    assigned = [p for p, s in zip(people, states, strict=True)
                if s in ("completed", "assigned", "withdrawn")]
    slots = [AllocationSlot(scheme=scheme, stratum=p.province_code, position=k + 1, block_number=k // 5 + 1,
                            block_size=5, position_in_block=k % 5 + 1, arm=ARMS[k % 5])
             for k, p in enumerate(assigned)]
    AllocationSlot.objects.bulk_create(slots, batch_size=5000)
    Assignment.objects.bulk_create(
        (Assignment(participant=p, study=study, slot=slot, arm=slot.arm, stratum=slot.stratum,
                    sequence_position=slot.position) for p, slot in zip(assigned, slots, strict=True)),
        batch_size=5000,
    )
    Exposure.objects.bulk_create(
        (Exposure(participant=p, stimulus_id=stimuli[k % 10].public_id, page_served_at=t0,
                  image_loaded_at=t0 + timedelta(milliseconds=300),
                  submitted_at=t0 + timedelta(milliseconds=int(10_000 + rng.gamma(4, 3000))))
         for k, (p, slot) in enumerate(zip(assigned, slots, strict=True)) if slot.arm != "control"),
        batch_size=5000,
    )
    PersonalData.objects.bulk_create(
        (PersonalData(participant=p, panel_id=f"PID{k}", postal_code="H2X 1Y4")
         for k, p in enumerate(people)), batch_size=5000)
    steps = ["consent", "postal"] + [page.key for page in instrument.pages]
    submissions = []
    total = 0
    for p, state in zip(people, states, strict=True):
        if state != "completed":
            continue
        for position, step in enumerate(steps):
            try:
                items = instrument.page(step).items
            except KeyError:
                items = ()
            answers = {item.code: int(rng.integers(1, 5)) for item in items if not item.is_personal}
            submissions.append(PageSubmission(
                participant=p, step=step, answers=answers, served_at=t0,
                submitted_at=t0 + timedelta(seconds=position * 30), seconds_on_page=30.0,
            ))
        if len(submissions) >= 20_000:
            PageSubmission.objects.bulk_create(submissions)
            total += len(submissions)
            submissions = []
    PageSubmission.objects.bulk_create(submissions)
    total += len(submissions)
    print(f"populated: {n} participants, {len(assigned)} assigned, {total} page submissions",
          flush=True)
    return study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--formats", nargs="*", default=["csv", "parquet", "dta"])
    args = parser.parse_args(argv)
    _setup_django()
    from django.db import connection

    from studyserver.exports.export import build_export
    from studyserver.exports.formats import write_export_file

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    figures: dict[str, float | int] = {"n": args.n}
    try:
        started = time.perf_counter()
        study = populate(args.n)
        figures["populate_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        frame = build_export(study, include_personal=True)
        figures["build_export_s"] = round(time.perf_counter() - started, 2)
        figures["rows"], figures["columns"] = frame.shape
        print(f"build_export: {figures['build_export_s']} s for {frame.shape}", flush=True)
        from studyserver.quality.services import assess_study

        started = time.perf_counter()
        assess_study(study)
        figures["quality_flags_s"] = round(time.perf_counter() - started, 2)
        print(f"of which the respondent-quality flags: {figures['quality_flags_s']} s", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            for fmt in args.formats:
                started = time.perf_counter()
                path = write_export_file(frame, fmt, Path(folder) / f"bench.{fmt}")
                figures[f"write_{fmt}_s"] = round(time.perf_counter() - started, 2)
                figures[f"{fmt}_mb"] = round(path.stat().st_size / 1e6, 1)
                print(f"write {fmt}: {figures[f'write_{fmt}_s']} s", flush=True)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
