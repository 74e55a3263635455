"""Researchers' admin: source photos (single, bulk zip, Street View), stimuli, review queue, coverage."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html

from . import services, views
from .forms import SourcePhotoForm
from .models import ReviewEvent, SourcePhoto, Stimulus

DEMO_NOTE = (
    "DEMO material: a picture of the project's simulated street world, not a real photo of the place. "
    "The demo's 'distant' image is a simulated flooded street, not a real flood in Bangladesh. "
    "A real study never shows DEMO material (the coverage board and eligibility check ignore it)."
)


def _thumbnail(url: str) -> str:
    return format_html('<img src="{}" alt="" style="max-height:80px;max-width:120px">', url)


@admin.register(SourcePhoto)
class SourcePhotoAdmin(admin.ModelAdmin):
    form = SourcePhotoForm
    list_display = ["__str__", "kind", "district", "province_code", "origin", "demo_badge", "uploaded_at"]
    list_filter = ["kind", "origin", "is_demo", "province_code"]
    search_fields = ["place_name_en", "place_name_fr", "district__name_en", "district__fed_code"]
    autocomplete_fields: list[str] = []
    actions = ["generate_stimuli"]
    change_list_template = "treatments/admin/sourcephoto_changelist.html"

    @admin.display(description="DEMO", boolean=True)
    def demo_badge(self, source: SourcePhoto) -> bool:
        return source.is_demo

    def get_readonly_fields(self, request: HttpRequest, obj: SourcePhoto | None = None) -> list[str]:
        return ["origin", "is_demo", "uploaded_by", "uploaded_at", "demo_notice"] if obj else []

    def get_fields(self, request: HttpRequest, obj: SourcePhoto | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        return ["demo_notice", *[f for f in fields if f != "demo_notice"]] if obj and obj.is_demo else fields

    @admin.display(description="Notice")
    def demo_notice(self, source: SourcePhoto) -> str:
        return DEMO_NOTE if source.is_demo else ""

    def save_model(self, request: HttpRequest, obj: SourcePhoto, form: Any, change: bool) -> None:
        if not change:
            obj.uploaded_by = request.user
            obj.origin = SourcePhoto.Origin.UPLOAD
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("generate"):
            stimulus = services.queue_stimulus(obj)
            messages.info(request, f"Generation queued (stimulus {stimulus.pk}); it appears in the review queue "
                          "once generated.")

    def has_generate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(views.GENERATE)

    @admin.action(description="Generate a stimulus (new seed) for the selected photos", permissions=["generate"])
    def generate_stimuli(self, request: HttpRequest, queryset: QuerySet[SourcePhoto]) -> None:
        count = 0
        for source in queryset:
            services.queue_stimulus(source)
            count += 1
        messages.success(request, f"Queued {count} generation task(s).")

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        site = self.admin_site
        return [
            path("bulk-upload/", wrap(lambda r: views.bulk_upload(r, site)), name="treatments_bulk_upload"),
            path("streetview/", wrap(lambda r: views.streetview_fetch(r, site)), name="treatments_streetview"),
            *super().get_urls(),
        ]


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    extra = 0
    can_delete = False
    fields = ["at", "actor", "action", "note"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Stimulus)
class StimulusAdmin(admin.ModelAdmin):
    list_display = ["id", "thumbnail", "source", "status", "backend", "model_version_short", "seed", "created_at"]
    list_filter = ["status", "source__kind", "backend", "source__is_demo", "source__province_code"]
    search_fields = ["public_id", "source__place_name_en", "source__district__fed_code"]
    list_select_related = ["source", "source__district"]
    inlines = [ReviewEventInline]
    actions = ["approve_selected", "reject_selected", "regenerate_selected"]
    change_list_template = "treatments/admin/stimulus_changelist.html"
    readonly_fields = [
        "public_id", "source", "status", "images", "backend", "model_version", "params", "seed", "timings",
        "error", "attempts", "task_id", "sends", "send_error", "next_attempt_at", "created_at", "started_at",
        "generated_at", "approved_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # stimuli come from generation (source photo actions, generate_treatments)

    @admin.display(description="model version")
    def model_version_short(self, stimulus: Stimulus) -> str:
        return stimulus.model_version[:12]

    @admin.display(description="result")
    def thumbnail(self, stimulus: Stimulus) -> str:
        if not stimulus.result:
            return "—"
        return _thumbnail(reverse("admin:treatments_stimulus_file", args=[stimulus.pk, "result"]))

    @admin.display(description="source · mask · result")
    def images(self, stimulus: Stimulus) -> str:
        parts = []
        for which, present in (("source", True), ("mask", bool(stimulus.mask)), ("result", bool(stimulus.result))):
            if present:
                url = reverse("admin:treatments_stimulus_file", args=[stimulus.pk, which])
                parts.append(format_html('<img src="{}" alt="{}" style="max-height:240px;margin-right:8px">', url, which))
        demo = format_html("<p><strong>{}</strong></p>", DEMO_NOTE) if stimulus.source.is_demo else ""
        return format_html("{}{}", demo, format_html("".join(["{}"] * len(parts)), *parts))

    def _review(self, request: HttpRequest, queryset: QuerySet[Stimulus], action: Any, verb: str) -> None:
        done, refused = 0, []
        for stimulus in queryset:
            try:
                action(stimulus, request.user, f"bulk {verb} from the stimulus list")
                done += 1
            except services.ReviewError as error:
                refused.append(f"{stimulus.pk}: {error}")
        if done:
            messages.success(request, f"{verb.capitalize()}: {done} {'stimulus' if done == 1 else 'stimuli'}.")
        for line in refused:
            messages.warning(request, line)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(views.REVIEW)

    @admin.action(description="Approve the selected stimuli", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Stimulus]) -> None:
        self._review(request, queryset, services.approve, "approved")

    @admin.action(description="Reject the selected stimuli", permissions=["review"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Stimulus]) -> None:
        self._review(request, queryset, services.reject, "rejected")

    @admin.action(description="Regenerate the selected stimuli with a new seed", permissions=["review"])
    def regenerate_selected(self, request: HttpRequest, queryset: QuerySet[Stimulus]) -> None:
        self._review(request, queryset, services.regenerate, "regenerated")

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        site = self.admin_site
        return [
            path("review/", wrap(lambda r: views.review_queue(r, site)), name="treatments_review_queue"),
            path("coverage/", wrap(lambda r: views.coverage_board(r, site)), name="treatments_coverage"),
            path("<int:pk>/file/<str:which>/", wrap(views.staff_file), name="treatments_stimulus_file"),
            *super().get_urls(),
        ]
