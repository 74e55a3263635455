"""python manage.py quality_flags SLUG [--store] [--json]

Prints each respondent-quality flag's count by arm (final: the study's medians now) and the
pre-registered exclusion rule; ``--store`` also keeps every participant's final flags.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.quality.flags import FLAGS
from studyserver.quality.services import assess_study, counts_by_arm, store_study
from studyserver.studies.models import Study
from studyserver.treatments.services import study_arms


class Command(BaseCommand):
    help = "Count a study's respondent-quality flags by arm; --store keeps each participant's final flags."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--store", action="store_true", help="Keep every participant's final flags.")
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"No study {options['slug']!r}.")
        if not options["json"]:
            self.stdout.write(f"Study {study.slug!r}: assessing its participants…")
        flags = assess_study(study)
        counts = counts_by_arm(study, flags, study_arms(study))
        counts["participants"] = len(flags)
        if options["store"]:
            counts["stored_changes"] = store_study(study, flags)
        if options["json"]:
            self.stdout.write(json.dumps(counts, indent=2, sort_keys=True))
            return
        arms = study_arms(study)
        self.stdout.write(f"  {len(flags)} participants; by arm: {', '.join(arms)}")
        for flag in FLAGS:
            per_arm = counts["quality_flags"][flag.name]
            self.stdout.write(f"  {flag.name:16} {counts['quality_flags_total'][flag.name]:6d} in all; "
                              + ", ".join(f"{arm} {n}" for arm, n in per_arm.items()))
        rule = ", ".join(counts["exclusion_rule"]) or "no flag"
        frozen = counts["exclusion_frozen_at"] or "not yet (the study has never opened)"
        self.stdout.write(f"  excluded by the pre-registered rule ({rule}; frozen {frozen}): {counts['excluded_total']}")
        if options["store"]:
            self.stdout.write(self.style.SUCCESS(f"  stored: {counts['stored_changes']} participant(s) changed"))
