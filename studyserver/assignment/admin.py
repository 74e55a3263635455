"""Admin: the scheme (editable until the first draw), read-only sequence and draws, live balance.

Researchers open *Allocation schemes → Balance* for counts per arm and stratum and the allocation
ratio achieved against the target. Slots are listed only once taken: the rest of the current block
stays concealed (allocation concealment), even from staff.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from studyserver.core.admin import ReadOnlyAdmin
from studyserver.core.records import KeptRecordAdmin

from .models import AllocationScheme, AllocationSlot, Assignment
from .services import allocation_table, arm_totals, max_stratum_imbalance


def balance_rows(scheme: AllocationScheme) -> dict[str, Any]:
    """What the balance page shows: per stratum and overall counts, shares against the target."""
    table = allocation_table(scheme.study)
    totals = arm_totals(table, scheme.arms)
    grand_total = sum(totals.values())
    ratio_sum = scheme.ratio_sum

    def share(n: int, total: int) -> str:
        return f"{100 * n / total:.1f}%" if total else "–"

    smallest = min((totals[arm] / ratio for arm, ratio in scheme.ratios.items()), default=0)
    achieved = ":".join(f"{totals[arm] / smallest:.2f}" if smallest else "–" for arm in scheme.arms)
    return {
        "arms": scheme.arms,
        "targets": [
            f"{ratio} ({100 * ratio / ratio_sum:.1f}%)" for ratio in scheme.ratios.values()
        ],
        "strata": [
            {
                "name": stratum,
                "counts": [counts[arm] for arm in scheme.arms],
                "total": sum(counts.values()),
                "imbalance": max(counts.values()) - min(counts.values()),
            }
            for stratum, counts in table.items()
        ],
        "totals": [totals[arm] for arm in scheme.arms],
        "shares": [share(totals[arm], grand_total) for arm in scheme.arms],
        "grand_total": grand_total,
        "target_ratio": ":".join(str(r) for r in scheme.ratios.values()),
        "achieved_ratio": achieved,
        "max_imbalance": max_stratum_imbalance(table),
        "max_block_size": max(scheme.block_sizes),
    }


@admin.register(AllocationScheme)
class AllocationSchemeAdmin(KeptRecordAdmin):
    list_display = (
        "study",
        "arm_summary",
        "strata",
        "strata_item",
        "block_summary",
        "rng",
        "draws",
        "balance_link",
    )
    readonly_fields = ("algorithm", "created_at", "is_simulation")

    @admin.display(description="arms (ratio)")
    def arm_summary(self, scheme: AllocationScheme) -> str:
        return ", ".join(f"{arm} ({ratio})" for arm, ratio in scheme.ratios.items())

    @admin.display(description="block sizes")
    def block_summary(self, scheme: AllocationScheme) -> str:
        return ", ".join(str(size) for size in scheme.block_sizes)

    @admin.display(description="RNG")
    def rng(self, scheme: AllocationScheme) -> str:
        return "cryptographic" if scheme.seed is None else f"seed {scheme.seed}"

    @admin.display(description="draws")
    def draws(self, scheme: AllocationScheme) -> int:
        return Assignment.objects.filter(study_id=scheme.study_id).count()

    @admin.display(description="balance")
    def balance_link(self, scheme: AllocationScheme) -> str:
        url = reverse("admin:assignment_allocationscheme_balance", args=[scheme.pk])
        return format_html('<a href="{}">counts and ratio</a>', url)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None and obj.sequence_started:
            # The sequence has started: the configuration is part of the record now.
            return (*AllocationScheme.FROZEN_FIELDS, "study", "created_at")
        return self.readonly_fields

    def kept_reason(self, obj: AllocationScheme) -> str:
        """A scheme that has drawn is part of the randomization record (the model refuses too)."""
        if not obj.sequence_started:
            return ""
        draws = Assignment.objects.filter(study_id=obj.study_id).count()
        return (f"its allocation sequence has started ({draws} draw{'' if draws == 1 else 's'}); "
                "it is part of the randomization record")

    def deletable(self, queryset):
        return queryset.filter(slots=None)

    def get_urls(self):
        custom = [
            path(
                "<int:scheme_id>/balance/",
                self.admin_site.admin_view(self.balance_view),
                name="assignment_allocationscheme_balance",
            )
        ]
        return custom + super().get_urls()

    def balance_view(self, request: HttpRequest, scheme_id: int) -> HttpResponse:
        scheme = get_object_or_404(AllocationScheme.objects.select_related("study"), pk=scheme_id)
        if not self.has_view_permission(request, scheme):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Allocation balance — {scheme.study}",
            "scheme": scheme,
            "opts": self.model._meta,
            "balance": balance_rows(scheme),
        }
        return TemplateResponse(request, "admin/assignment/balance.html", context)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = (
        "participant_id",
        "study",
        "arm",
        "stratum",
        "sequence_position",
        "assigned_at",
        "assigned_by",
    )
    list_filter = ("study", "arm", "stratum")
    search_fields = ("participant__id",)
    list_select_related = ("study",)
    date_hierarchy = "assigned_at"


@admin.register(AllocationSlot)
class AllocationSlotAdmin(ReadOnlyAdmin):
    list_display = (
        "scheme",
        "stratum",
        "position",
        "block_number",
        "block_size",
        "position_in_block",
        "arm",
    )
    list_filter = ("scheme", "stratum")
    list_select_related = ("scheme__study",)

    def get_queryset(self, request: HttpRequest):
        # Allocation concealment: only slots already taken are shown.
        return super().get_queryset(request).filter(assignment__isnull=False)
