"""Admin rows that become records once in use: kept for every account, and said so.

Used by the questionnaire versions (instrument) and the allocation schemes (assignment), which
sit in different layers: the helper lives in core, which both may import.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse


class KeptRecordAdmin(admin.ModelAdmin):
    """An admin whose rows become records once in use (a questionnaire version a study uses, an
    allocation scheme that has drawn): such a row is not deletable by anyone, superusers included.

    ``kept_reason(obj)`` says why a row is kept ('' when it may go) and ``deletable(queryset)``
    narrows a queryset to the rows that may go. The bulk delete is offered only while one such row
    exists, and a refusal names the reason, not a missing role (the permission is not what lacks).
    """

    def kept_reason(self, obj: Any) -> str:
        return ""

    def deletable(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def _may_delete(self, request: HttpRequest) -> bool:
        """The permission alone (``has_delete_permission`` also asks whether the row is kept)."""
        return admin.ModelAdmin.has_delete_permission(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_delete(request) and (obj is None or not self.kept_reason(obj))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions and not self.deletable(self.get_queryset(request)).exists():
            del actions["delete_selected"]
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], list[Any]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        kept = [(obj, reason) for obj in objs if (reason := self.kept_reason(obj))]
        if kept and self._may_delete(request):
            # Django counts a kept row, and the read-only rows that refer to it, as missing
            # permissions, and lists every such row (thousands of participants): one line per
            # kept row with its reason instead (perhaps a missing permission shows once they are
            # left out of the selection).
            perms_needed = set()
            protected = [f"{obj}: {reason}" for obj, reason in kept]
        return deleted, counts, perms_needed, protected

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self._may_delete(request) and (reason := self.kept_reason(obj)):
            raise PermissionDenied(f"{self.opts.verbose_name} {obj} cannot be deleted: {reason}.")
        return super().delete_view(request, object_id, extra_context)
