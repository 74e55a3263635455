"""Who may take which data, and the log of every export (admin, command, API)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.core.exceptions import PermissionDenied

from .export import Progress, build_export
from .models import ExportLog

PERSONAL_DATA_PERMISSION = "survey.export_personal_data"
# Exports without personal data, the funnel and the research API (the data manager role).
EXPORT_PERMISSION = "exports.export_data"


def may_export(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(EXPORT_PERMISSION))


def may_export_personal_data(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(PERSONAL_DATA_PERMISSION))


def check_personal_data_permission(user: Any, include_personal: bool) -> None:
    """Raise PermissionDenied when personal data is asked for by someone not allowed to take it."""
    if not include_personal:
        return
    if user is None:
        raise PermissionDenied("Personal data can only be exported by a named user.")
    if not may_export_personal_data(user):
        raise PermissionDenied(
            f"User {user.get_username()!r} lacks the permission {PERSONAL_DATA_PERMISSION!r} "
            "needed to export personal data."
        )


def export_frame(study: Any, *, user: Any, include_personal: bool = False,
                 progress: Progress | None = None) -> pd.DataFrame:
    """The export frame, after the permission check (nothing is read when it fails)."""
    check_personal_data_permission(user, include_personal)
    return build_export(study, include_personal=include_personal, progress=progress)


def log_export(study: Any, *, user: Any, fmt: str, channel: str, row_count: int,
               include_personal: bool, username: str = "") -> ExportLog:
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return ExportLog.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else username,
        study=study, study_slug=study.slug, format=fmt, channel=channel, row_count=row_count,
        included_personal_data=include_personal,
    )
