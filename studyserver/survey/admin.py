"""Researchers see participants' progress, never their personal data unless specially permitted."""

from django.contrib import admin, messages

from . import flow
from .models import InformationRequest, PageSubmission, Participant, PersonalData


class PageSubmissionInline(admin.TabularInline):
    model = PageSubmission
    extra = 0
    can_delete = False
    readonly_fields = ("step", "answers", "served_at", "submitted_at", "seconds_on_page", "revision")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("short_id", "study", "state", "screenout_reason", "current_step", "province_code", "district",
                    "district_method", "started_at")
    list_filter = ("study", "state", "screenout_reason", "province_code", "district_method", "language",
                   "instrument_version")
    search_fields = ("id", "fsa")
    readonly_fields = [f.name for f in Participant._meta.fields]
    inlines = [PageSubmissionInline]
    actions = ["withdraw_selected"]  # the exports app adds its export action (exports/admin.py)

    @admin.display(description="participant")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # withdrawal deletes data through the action; rows stay for the funnel

    def has_withdraw_permission(self, request):
        return request.user.has_perm("survey.withdraw_participant")

    @admin.action(description="Withdraw: delete answers and personal data (keeps the anonymous slot)",
                  permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        for participant in queryset:
            flow.withdraw(participant)
        self.message_user(request, f"{queryset.count()} participant(s) withdrawn.", messages.SUCCESS)


@admin.register(PersonalData)
class PersonalDataAdmin(admin.ModelAdmin):
    list_display = ("participant", "updated_at")
    readonly_fields = ("participant", "panel_id", "panel_parameters", "postal_code", "email", "signature_name",
                       "updated_at")

    def has_module_permission(self, request):
        return request.user.has_perm("survey.export_personal_data")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("survey.export_personal_data")

    # survey.change_personaldata alone must not open these pages (Django's admin lets "change"
    # imply "view"): personal data is read by personal-data exporters only, and never edited here.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(InformationRequest)
class InformationRequestAdmin(admin.ModelAdmin):
    list_display = ("participant", "topic", "status", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at")
    list_filter = ("topic", "status")
    readonly_fields = ("participant", "topic", "status", "attempts", "last_error", "next_attempt_at", "claimed_at",
                       "created_at", "sent_at")

    def has_add_permission(self, request):
        return False
