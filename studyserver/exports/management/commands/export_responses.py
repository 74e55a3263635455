"""python manage.py export_responses --format csv|xlsx|dta|parquet --out PATH [--study SLUG]
[--include-personal --user USERNAME]"""

from __future__ import annotations

import getpass
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.exports.access import export_frame, log_export
from studyserver.exports.formats import (
    FILE_FORMATS,
    ExportFormatError,
    check_format,
    check_writable,
    write_export_file,
)
from studyserver.exports.models import ExportLog
from studyserver.studies.models import Study


def resolve_study(slug: str | None) -> Study:
    """The study named by ``slug``, or the only study when none is named."""
    if slug:
        try:
            return Study.objects.get(slug=slug)
        except Study.DoesNotExist:
            known = ", ".join(Study.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(f"No study {slug!r}. Known studies: {known or '(none)'}.") from None
    studies = list(Study.objects.order_by("slug")[:50])
    if len(studies) == 1:
        return studies[0]
    if not studies:
        raise CommandError("There is no study yet.")
    raise CommandError(
        "Several studies exist; name one with --study (" + ", ".join(s.slug for s in studies) + ")."
    )


def resolve_user(username: str | None) -> Any:
    """The user named by ``--user``, or None when none is named."""
    if not username:
        return None
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user {username!r}.") from None


class Command(BaseCommand):
    help = (
        "Export one row per participant (answers as numeric codes, funnel state, arm, district, "
        "timings, image provenance). Personal data only with --include-personal --user, for a user "
        "holding survey.export_personal_data. Every export is logged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", required=True,
                            help=f"One of {', '.join(FILE_FORMATS)}.")
        parser.add_argument("--out", required=True, help="Output file path.")
        parser.add_argument("--study", help="Study slug (optional when there is only one study).")
        parser.add_argument("--include-personal", action="store_true",
                            help="Add panel_id, postal_code, email, signature_name (needs --user).")
        parser.add_argument("--user", help="Username the export is made for (logged).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fmt = check_format(options["fmt"])
        except ExportFormatError as error:
            raise CommandError(str(error)) from None
        try:
            out = check_writable(options["out"])
        except OSError as error:
            raise CommandError(f"Cannot write {options['out']}: {error}") from None
        study = resolve_study(options.get("study"))
        user = resolve_user(options.get("user"))
        include_personal = bool(options.get("include_personal"))
        if include_personal and user is None:
            raise CommandError("--include-personal needs --user USERNAME (a user with the "
                               "survey.export_personal_data permission).")

        started = time.perf_counter()
        self.stdout.write(f"Exporting study {study.slug!r} as {fmt}"
                          + (" WITH personal data" if include_personal else "") + " …")
        try:
            frame = export_frame(study, user=user, include_personal=include_personal,
                                 progress=lambda message: self.stdout.write(f"  {message}"))
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"  writing {fmt} …")
        try:
            path = write_export_file(frame, fmt, out)
        except OSError as error:
            raise CommandError(f"Cannot write {out}: {error}") from None
        log_export(study, user=user, fmt=fmt, channel=ExportLog.Channel.COMMAND,
                   row_count=len(frame), include_personal=include_personal,
                   username=f"(shell:{getpass.getuser()})")
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {len(frame)} rows x {frame.shape[1]} columns to {path} "
            f"in {time.perf_counter() - started:.1f} s (logged)."
        ))
        if frame.empty:
            self.stderr.write(self.style.WARNING(
                f"Study {study.slug!r} has no participants yet: the file has the column headers only."))
