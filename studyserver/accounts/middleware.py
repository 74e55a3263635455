"""A researcher refused an admin page gets an admin page saying which permission it needs (or,
for a superuser, why no account may do it).

Without this, Django's project-wide 403 handler answers with the participants' page ("this link
belongs to another session"), which tells a researcher nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from .roles import ROLES


class AdminPermissionDeniedMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, PermissionDenied) or not request.path.startswith(reverse("admin:index")):
            return None
        user = getattr(request, "user", None)
        if user is None or not (user.is_active and user.is_staff):
            return None
        context = {
            **admin.site.each_context(request),
            # A superuser holds every permission: what refused them is the object's state, and
            # "ask a superuser for a role" would send them to themselves.
            "title": "Not possible" if user.is_superuser else "Permission needed",
            "superuser": user.is_superuser,
            "reason": str(exception),
            "groups": list(user.groups.values_list("name", flat=True)),
            "roles": list(ROLES),
        }
        return TemplateResponse(request, "accounts/admin_forbidden.html", context, status=403)
