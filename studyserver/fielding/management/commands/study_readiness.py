"""python manage.py study_readiness SLUG [--open [--confirm-test-weights]]

Prints what stands between a study and fielding it for its scope (the same check as the admin's
study page) and, with ``--open``, opens it when nothing blocks. Exit status 1 when it is not ready.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.fielding.readiness import BLOCKER, CONFIRM, blockers, confirmations, readiness
from studyserver.studies.models import Study


class Command(BaseCommand):
    help = "Check a study's readiness for its scope; --open opens it when nothing blocks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--open", action="store_true", help="Open the study if it is ready.")
        parser.add_argument("--confirm-test-weights", action="store_true",
                            help="Open even though approved images were made by the tiny test weights.")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"No study {options['slug']!r}.")
        self.stdout.write(f"Study {study.slug!r}: {study.get_scope_display().lower()} ({study.scope_summary()}), "
                          f"{study.districts_in_scope().count()} district(s) of the {study.representation_order} order")
        reasons = readiness(study)
        labels = {BLOCKER: "BLOCKS", CONFIRM: "CONFIRM", "warning": "note"}
        for reason in reasons:
            self.stdout.write(f"  {labels[reason.level]}: {reason.message}")
        blocking = blockers(reasons) if not study.demo else []
        unconfirmed = confirmations(reasons) if not options["confirm_test_weights"] else []
        if not blockers(reasons) and not confirmations(reasons):
            self.stdout.write(self.style.SUCCESS("  ready to open for its scope"))
        if options["open"]:
            if blocking or unconfirmed:
                raise CommandError("Not opened: resolve the reasons above"
                                   + (" (or pass --confirm-test-weights)." if unconfirmed and not blocking else "."))
            study.open_to_participants()
            self.stdout.write(self.style.SUCCESS(f"Opened {study.slug!r}."))
            self.stdout.write(f"  exclusion rule frozen at {study.exclusion_frozen_at:%Y-%m-%d %H:%M} UTC: "
                              f"{', '.join(study.exclusion_rule) or 'no quality flag'}")
        elif blocking:
            raise CommandError(f"{len(blocking)} reason(s) block opening.")
