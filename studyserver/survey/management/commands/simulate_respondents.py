"""Simulated respondents for the demo study, so the admin, the export and the analysis have data."""

import time

from django.core.management.base import BaseCommand, CommandError

from studyserver.studies.models import Study
from studyserver.survey.simulation import PLANTED_KINDS, SimulationError, simulate_respondents


class Command(BaseCommand):
    help = ("Run N simulated respondents through a demo study's real pages (random answers, no planted "
            "effects; for planted effects use `python -m analysis simulate`), optionally with planted "
            "speeders, straight-liners, duplicates and bots. Refused for a real study.")

    def add_arguments(self, parser):
        parser.add_argument("--study", default="demo", help="Slug of a demo study (default: demo).")
        parser.add_argument("--count", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)
        for kind in PLANTED_KINDS:
            option = kind.replace("_", "-") + "s"
            parser.add_argument(f"--{option}", type=float, default=0.0, dest=kind, metavar="SHARE",
                                help=f"Share of planted {kind.replace('_', ' ')}s, e.g. 0.05 (panel id SIM-NNNNN-{kind}).")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug {options['study']!r} (run `manage.py seed_demo` first).")
        if options["count"] < 1:
            raise CommandError("--count must be at least 1.")
        started = time.monotonic()
        try:
            states = simulate_respondents(study, options["count"], options["seed"],
                                          progress=lambda line: self.stdout.write(f"  {line}"),
                                          plant={kind: options[kind] for kind in PLANTED_KINDS if options[kind]})
        except SimulationError as error:
            raise CommandError(str(error)) from error
        summary = ", ".join(f"{n} {state}" for state, n in states.items())
        self.stdout.write(self.style.SUCCESS(
            f"{options['count']} simulated respondents in {time.monotonic() - started:.0f} s; all simulated so far: {summary}"))
