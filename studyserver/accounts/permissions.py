"""Permission class of the research API (the DRF default in settings, also for the schema/docs)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from studyserver.exports.access import EXPORT_PERMISSION, may_export

from .throttling import count_failed_login


class CanUseResearchApi(BasePermission):
    """Staff with ``exports.export_data`` (the data manager role; superusers implicitly)."""

    message = f"The research API needs a staff account with the permission {EXPORT_PERMISSION!r} (data manager role)."

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user.is_authenticated:
            count_failed_login(request, view)  # 429 past API_THROTTLE_ANON, before the 401
            return False
        return may_export(request.user)
