"""The permission-checked export frame, and the log of every export (admin, command, API).

Who may take which data is decided in :mod:`studyserver.accounts.permissions`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyserver.accounts.permissions import check_personal_data_permission

from .export import Progress, build_export
from .models import ExportLog


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
