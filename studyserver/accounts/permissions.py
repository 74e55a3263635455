"""Who may take which data: the export permissions, and the research API's permission class (the
DRF default in settings, also for the schema/docs)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from .throttling import count_failed_login

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



class CanUseResearchApi(BasePermission):
    """Staff with ``exports.export_data`` (the data manager role; superusers implicitly)."""

    message = f"The research API needs a staff account with the permission {EXPORT_PERMISSION!r} (data manager role)."

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user.is_authenticated:
            count_failed_login(request, view)  # 429 past API_THROTTLE_ANON, before the 401
            return False
        return may_export(request.user)
