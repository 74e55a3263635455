"""Researchers' side: the members loaded (with past members), and the signed-letters download."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from studyserver.accounts.permissions import may_export_personal_data
from studyserver.core.admin import ReadOnlyAdmin
from studyserver.exports.models import ExportLog
from studyserver.studies.models import Study

from .delivery import admin_zip_name, export_letters, signed_submissions, zip_bytes
from .models import LetterDelivery, Representative


@admin.register(Representative)
class RepresentativeAdmin(ReadOnlyAdmin):
    """Read-only: members come from ``manage.py load_representatives`` and their history is evidence."""

    list_display = ("full_name", "district", "party", "email", "is_current", "start_date", "current_since",
                    "replaced_at")
    list_filter = ("is_current", "district__representation_order", "district__province_code", "party")
    search_fields = ("first_name", "last_name", "district__name_en", "district__name_fr", "district__fed_code")
    list_select_related = ("district",)


class LetterDeliveryForm(forms.Form):
    study = forms.ModelChoiceField(
        queryset=Study.objects.order_by("title"),
        error_messages={"required": "Choose a study.", "invalid_choice": "No such study (unknown study id)."},
    )


@admin.register(LetterDelivery)
class LetterDeliveryAdmin(ReadOnlyAdmin):
    """Download one zip per study: a PDF per member and manifest.csv. Personal data: same permission
    as the personal-data export (``survey.export_personal_data``), logged."""

    def _permitted(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and may_export_personal_data(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._permitted(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._permitted(request)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self._permitted(request):
            raise PermissionDenied
        form = LetterDeliveryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            study = form.cleaned_data["study"]
            _delivery, files = export_letters(study, user=request.user, channel=ExportLog.Channel.ADMIN)
            response = HttpResponse(zip_bytes(files), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="{admin_zip_name(study)}"'
            response["Cache-Control"] = "no-store"
            return response
        studies = [(study, signed_submissions(study).count()) for study in Study.objects.order_by("title")]
        context = {
            **self.admin_site.each_context(request),
            "title": "Download signed letters to MPs",
            "opts": self.model._meta,
            "form": form,
            "studies": studies,
            "members_loaded": Representative.objects.filter(is_current=True).count(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "letters/delivery.html", context,
                                status=400 if request.method == "POST" else 200)
