"""Permission checks for the admin's custom pages and actions (the roles are in roles.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def permission_required(*permissions: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A staff page that answers 403 unless the user holds every permission.

    Used inside ``admin_site.admin_view`` (which already sends anonymous and non-staff users to
    the login page), so the 403 only ever reaches a logged-in staff member without the role.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perms(permissions):
                raise PermissionDenied(f"This page needs the permission(s) {', '.join(permissions)}.")
            return view(request, *args, **kwargs)

        guarded.required_permissions = permissions  # type: ignore[attr-defined]
        return guarded

    return decorator
