"""Researchers' side: a download page (listed on the admin index as "Download data") and the
read-only export log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from studyserver.accounts.permissions import EXPORT_PERMISSION, may_export, may_export_personal_data
from studyserver.core.admin import ReadOnlyAdmin
from studyserver.core.times import file_stamp
from studyserver.studies.models import Study
from studyserver.survey.admin import ParticipantAdmin
from studyserver.survey.models import Participant

from .access import export_frame, log_export
from .formats import CONTENT_TYPES, FILE_FORMATS, export_bytes
from .funnel import funnel
from .models import DataDownload, ExportLog

FORMAT_NAMES = {
    "csv": "CSV (plain text)",
    "xlsx": "Excel (.xlsx, with a codebook sheet)",
    "dta": "Stata (.dta, value labels embedded)",
    "parquet": "Parquet",
}


class DownloadForm(forms.Form):
    study = forms.ModelChoiceField(
        queryset=Study.objects.order_by("title"),
        error_messages={"invalid_choice": "No such study (unknown study id)."},
    )
    format = forms.ChoiceField(
        choices=[(name, FORMAT_NAMES[name]) for name in FILE_FORMATS],
        error_messages={"invalid_choice": "Unknown format %(value)s: use csv, xlsx, dta or parquet."},
    )
    include_personal = forms.BooleanField(
        required=False, label="Include personal data (panel id, postal code, e-mail, signature)",
        help_text="Only for users with the permission to export personal data. Logged.",
    )
    # Set by the "download the headers anyway" button the page shows for a study nobody entered.
    headers_only = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, may_include_personal: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.may_include_personal = may_include_personal
        if not may_include_personal:
            self.fields["include_personal"].disabled = True
            self.fields["include_personal"].help_text = (
                "You do not have the permission to export personal data."
            )

    def clean(self) -> dict:
        data = super().clean()
        asked = self.data.get("include_personal") not in (None, "", "0", "off", "false")
        if asked and not self.may_include_personal:
            raise forms.ValidationError("You do not have the permission to export personal data.")
        data["include_personal"] = asked and self.may_include_personal
        return data


def _selected_study(request: HttpRequest) -> tuple[Study | None, str]:
    """The study named by ?study=<id> (to show its funnel), or an error message."""
    raw = request.GET.get("study", "").strip()
    if not raw:
        return None, ""
    if not raw.isdigit():
        return None, f"Bad study id {raw!r}: it must be a number."
    study = Study.objects.filter(pk=int(raw)).first()
    return (study, "") if study else (None, f"No study with id {raw}.")


@admin.register(DataDownload)
class DataDownloadAdmin(ReadOnlyAdmin):
    """The download page: pick a study and a format (and personal data, if permitted)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_export(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return may_export(request.user)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        permitted = may_export_personal_data(request.user)
        if request.method == "POST":
            form = DownloadForm(request.POST, may_include_personal=permitted)
            if form.is_valid():
                return self._download(request, form, extra_context)
            return self._page(request, form, extra_context, status=400)
        study, problem = _selected_study(request)
        form = DownloadForm(initial={"study": study, "format": "csv"}, may_include_personal=permitted)
        return self._page(request, form, extra_context, study=study, problem=problem,
                          status=400 if problem else 200)

    def _page(self, request: HttpRequest, form: DownloadForm, extra_context: dict | None, *,
              study: Study | None = None, problem: str = "", empty: Study | None = None,
              status: int = 200) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Download data",
            "opts": self.model._meta,
            "form": form,
            "problem": problem,
            "empty": empty,
            "study": study,
            "funnel": funnel(study) if study else None,
            "studies": Study.objects.order_by("title"),
            "recent": ExportLog.objects.select_related("user")[:10],
            "may_include_personal": form.may_include_personal,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "exports/download.html", context, status=status)

    def _download(self, request: HttpRequest, form: DownloadForm, extra_context: dict | None) -> HttpResponse:
        data = form.cleaned_data
        study, fmt, personal = data["study"], data["format"], data["include_personal"]
        frame = export_frame(study, user=request.user, include_personal=personal)
        if frame.empty and not data["headers_only"]:
            # A file of headers alone, downloaded without a word, reads as a failed export: say
            # so first (as export_responses does), and offer the headers on a second click.
            again = DownloadForm(initial={**data, "headers_only": True},
                                 may_include_personal=form.may_include_personal)
            return self._page(request, again, extra_context, study=study, empty=study)
        content = export_bytes(frame, fmt)
        log_export(study, user=request.user, fmt=fmt, channel=ExportLog.Channel.ADMIN,
                   row_count=len(frame), include_personal=personal)
        stamp = file_stamp()  # local time, zone named: pei-pilot-20261203-1322-EST.csv
        suffix = "-personal" if personal else ""
        response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = (
            f'attachment; filename="{study.slug}-{stamp}{suffix}.{fmt}"'
        )
        response["Cache-Control"] = "no-store"
        return response


@admin.action(description="Export selected participants (CSV, no personal data)", permissions=["export"])
def export_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset) -> HttpResponse | None:
    """Participant admin action: the export rows of the selected participants of one study.

    :class:`ExportableParticipantAdmin` adds it to the participants' list.
    """
    study_ids = set(queryset.values_list("study_id", flat=True).distinct())
    if len(study_ids) != 1:
        modeladmin.message_user(request, "Select participants of one study at a time.",
                                messages.ERROR)
        return None
    study = Study.objects.get(pk=study_ids.pop())
    selected = {str(pk) for pk in queryset.values_list("pk", flat=True)}
    frame = export_frame(study, user=request.user)
    frame = frame[frame["participant_id"].isin(selected)].reset_index(drop=True)
    log_export(study, user=request.user, fmt="csv", channel=ExportLog.Channel.ADMIN,
               row_count=len(frame), include_personal=False)
    response = HttpResponse(export_bytes(frame, "csv"), content_type=CONTENT_TYPES["csv"])
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-selected.csv"'
    return response


class ExportableParticipantAdmin(ParticipantAdmin):
    """The survey's participant list with the export action: added here, so that survey (a lower
    layer) knows nothing of exports."""

    actions = [*ParticipantAdmin.actions, export_selected]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)


admin.site.unregister(Participant)
admin.site.register(Participant, ExportableParticipantAdmin)


@admin.register(ExportLog)
class ExportLogAdmin(ReadOnlyAdmin):
    """Who exported what and when. Read-only: the log is evidence."""

    list_display = ("created_at", "username", "study_slug", "format", "channel", "row_count",
                    "included_personal_data")
    list_filter = ("channel", "format", "included_personal_data", "study_slug")
    search_fields = ("username", "study_slug")
    date_hierarchy = "created_at"
