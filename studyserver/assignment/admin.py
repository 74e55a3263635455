"""Admin: the scheme (editable until the first draw), read-only sequence and draws, live balance.

Researchers open *Allocation schemes → Balance* for counts per arm and stratum and the allocation
ratio achieved against the target. Slots are listed only once taken: the rest of the current block
stays concealed (allocation concealment), even from staff.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from studyserver.core.admin import ReadOnlyAdmin
from studyserver.core.records import KeptRecordAdmin
from studyserver.studies.arms import ARMS

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


class ArmRatiosWidget(forms.MultiWidget):
    """A number box per arm, each labelled with its arm (instead of the raw JSON list)."""

    template_name = "admin/assignment/arm_ratios_widget.html"

    def __init__(self) -> None:
        super().__init__({arm: forms.NumberInput(attrs={"min": 0, "step": 1, "style": "width:5em", "title": arm})
                          for arm in ARMS})

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict[str, Any]:
        # The stored value is itself a list (of dicts), which MultiWidget would take as split already.
        if isinstance(value, list) and any(isinstance(entry, dict) for entry in value):
            value = self.decompress(value)
        return super().get_context(name, value, attrs)

    def decompress(self, value: Any) -> list[Any]:
        configured = {entry.get("arm"): entry.get("ratio") for entry in value or [] if isinstance(entry, dict)}
        return [configured.get(arm, 0) for arm in ARMS]


class ArmRatiosField(forms.MultiValueField):
    """``[{"arm": …, "ratio": …}, …]`` in the platform's arm order, from one number per arm.

    The model's own check (two positive ratios at least) then reports on this field.
    """

    widget = ArmRatiosWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("encoder", None), kwargs.pop("decoder", None)  # a JSONField's form-field arguments
        fields = [forms.IntegerField(min_value=0, error_messages={
            "min_value": f"The {arm} ratio is 0 (arm left out) or more.",
            "required": f"Give the {arm} ratio (0 leaves the arm out).",
            "invalid": f"The {arm} ratio is a whole number."}) for arm in ARMS]
        super().__init__(fields, require_all_fields=True, **kwargs)

    def compress(self, data_list: list[Any]) -> list[dict[str, Any]]:
        return [{"arm": arm, "ratio": ratio} for arm, ratio in zip(ARMS, data_list, strict=True)] if data_list else []


class AllocationSchemeForm(forms.ModelForm):
    class Meta:
        model = AllocationScheme
        fields = ("study", "arm_ratios", "strata", "strata_item", "block_multiples", "seed")
        field_classes = {"arm_ratios": ArmRatiosField}
        labels = {"arm_ratios": "Arm ratios"}
        help_texts = {"arm_ratios": "Relative share of each arm (2 against 1s: twice as many); 0 leaves an arm out."}


@admin.register(AllocationScheme)
class AllocationSchemeAdmin(KeptRecordAdmin):
    form = AllocationSchemeForm
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

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...] | None:
        # Frozen: the ratios are shown as words (arm_summary), the JSON field is not on the form.
        return ("arm_ratios",) if obj is not None and obj.sequence_started else super().get_exclude(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None and obj.sequence_started:
            # The sequence has started: the configuration is part of the record now.
            frozen = [name for name in AllocationScheme.FROZEN_FIELDS if name != "arm_ratios"]
            return ("arm_summary", *frozen, "study", "created_at")  # the ratios as words, not JSON
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
