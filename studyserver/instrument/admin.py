"""Questionnaire versions in the admin: upload (file or pasted text), read, revise, never edit.

Permissions: ``instrument.add_instrumentversion`` to load a version, ``view_instrumentversion`` to
read one; a version in use by a study or a participant cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from studyserver.core.records import KeptRecordAdmin

from .definition import Instrument, InstrumentError, too_large_problem
from .models import InstrumentVersion
from .versions import check_source, default_version, instrument_problems, store_version

PREVIEW_TEXTS: tuple[tuple[str, str], ...] = (
    ("Consent", "consent_title"), ("", "consent_body"), ("", "consent_age"), ("", "consent_agree"),
    ("", "consent_decline"), ("Debrief", "debrief_title"), ("Control arm", "debrief_arm_control"),
    ("Distant arm (a real photograph)", "debrief_arm_distant"), ("Generated images", "debrief_arm_generated"),
    ("All arms", "debrief_body"), ("", "debrief_finish"),
)


def participant_texts(instrument: Instrument) -> str:
    """The consent and debrief exactly as participants see them, English beside French."""
    rows = []
    for heading, key in PREVIEW_TEXTS:
        text = instrument.texts.get(key)
        if text is None:
            continue
        cells = [format_html_join("", "<p>{}</p>", ((line,) for line in text.get(lang).split("\n") if line.strip()))
                 for lang in ("en", "fr")]
        rows.append(format_html('<tr><th>{}<br><code>{}</code></th><td lang="en">{}</td><td lang="fr">{}</td></tr>',
                                heading, key, cells[0], cells[1]))
    return format_html('<table class="participant-texts"><tr><th></th><th>English</th><th>Français</th></tr>{}</table>',
                       format_html_join("", "{}", ((row,) for row in rows)))


class VersionUploadForm(forms.ModelForm):
    upload = forms.FileField(required=False, label="YAML file")
    text = forms.CharField(
        required=False, label="or the YAML text", strip=False,
        widget=forms.Textarea(attrs={"rows": 30, "cols": 110, "spellcheck": "false", "style": "font-family: monospace"}),
        help_text="“Revise” on a stored version fills this in: change the wording or codes and give it a new `version:`.",
    )

    class Meta:
        model = InstrumentVersion
        fields = ("note",)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("upload")
        if upload is not None:
            too_large = too_large_problem(upload.size, upload.name)
            if too_large:  # refused before reading it
                raise ValidationError(too_large)
            try:
                source = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError(f"{upload.name} is not UTF-8 text: save it as UTF-8 and upload it again.") from None
            filename = upload.name
        elif (data.get("text") or "").strip():
            # Browsers send CRLF: normalized so that pasting a file's text gives the file's hash.
            source, filename = data["text"].replace("\r\n", "\n"), ""
        else:
            raise ValidationError("Upload a YAML file or paste its text.")
        try:
            check_source(source, filename or "the pasted text")
        except InstrumentError as error:
            raise ValidationError(error.problems) from None
        data["source"], data["filename"] = source, filename
        return data


@admin.register(InstrumentVersion)
class InstrumentVersionAdmin(KeptRecordAdmin):
    form = VersionUploadForm
    list_display = ("label", "short_hash", "consent_version", "created_at", "created_by", "study_count",
                    "participant_count")
    search_fields = ("label", "content_hash", "note")
    readonly_fields = ("label", "content_hash", "consent_version", "filename", "note", "created_at", "created_by",
                       "used_by", "texts_preview", "problems", "revise", "source_text")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(
            _studies=Count("studies", distinct=True), _participants=Count("participants", distinct=True)
        )

    def get_fields(self, request: HttpRequest, obj: InstrumentVersion | None = None):
        if obj is None:
            return ("upload", "text", "note")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: InstrumentVersion | None = None):
        return () if obj is None else self.readonly_fields

    def _store_the_sample(self, request: HttpRequest) -> None:
        """A fresh install has stored no version yet (the sample is stored on first use): the list
        and the Add form, which say "'Revise' on a stored version", store it, so there is one."""
        if request.method == "GET" and not InstrumentVersion.objects.exists():
            sample = default_version()
            self.message_user(request, f"The sample questionnaire {sample.label} is stored: open it and "
                              "“Revise” it to make your study's version.", messages.INFO)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        self._store_the_sample(request)
        return super().changelist_view(request, extra_context)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None):
        if self.has_add_permission(request):
            self._store_the_sample(request)
        return super().add_view(request, form_url, extra_context)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        base = InstrumentVersion.objects.filter(pk=request.GET.get("from") or None).first() if (
            request.GET.get("from", "").isdigit()) else None
        return {"text": base.source} if base is not None else {}

    def has_change_permission(self, request: HttpRequest, obj: InstrumentVersion | None = None) -> bool:
        return False  # immutable: a revision is a new version

    def kept_reason(self, obj: InstrumentVersion) -> str:
        """A version a study or a participant uses is kept: their answers are coded by it."""
        studies = list(obj.studies.order_by("slug").values_list("slug", flat=True))
        participants = obj.participants.count()
        uses = []
        if studies:
            uses.append(f"{'study' if len(studies) == 1 else 'studies'} {', '.join(studies)}")
        if participants:
            uses.append(f"{participants} participant{'' if participants == 1 else 's'}' answers")
        return f"it is used by {' and '.join(uses)} (a version in use is kept)" if uses else ""

    def deletable(self, queryset):
        return queryset.filter(studies=None, participants=None)

    def save_form(self, request: HttpRequest, form: VersionUploadForm, change: bool) -> InstrumentVersion:
        data = form.cleaned_data
        version, created = store_version(data["source"], filename=data["filename"], user=request.user,
                                         note=data.get("note") or "")
        if not created:
            self.message_user(request, f"This text is already stored as {version}: nothing changed.", messages.WARNING)
        form.instance = version
        return version

    def save_model(self, request: HttpRequest, obj: InstrumentVersion, form: Any, change: bool) -> None:
        """Stored by :meth:`save_form` (through ``store_version``, the command's path)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A version has no related rows to save."""

    @admin.display(description="hash")
    def short_hash(self, obj: InstrumentVersion) -> str:
        return obj.content_hash[:12]

    @admin.display(description="studies", ordering="_studies")
    def study_count(self, obj: InstrumentVersion) -> int:
        return getattr(obj, "_studies", 0)

    @admin.display(description="participants", ordering="_participants")
    def participant_count(self, obj: InstrumentVersion) -> int:
        return getattr(obj, "_participants", 0)

    @admin.display(description="used by")
    def used_by(self, obj: InstrumentVersion) -> str:
        studies = list(obj.studies.order_by("slug"))
        if not studies:
            return "no study"
        return format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("admin:studies_study_change", args=[s.pk]), s.slug) for s in studies))

    @admin.display(description="consent and debrief, as participants see them")
    def texts_preview(self, obj: InstrumentVersion) -> str:
        return participant_texts(obj.instrument)

    @admin.display(description="before fielding a real study")
    def problems(self, obj: InstrumentVersion) -> str:
        found = instrument_problems(obj, demo=False)
        return format_html_join("", "<p>⚠ {}</p>", ((p,) for p in found)) if found else "No placeholder contacts."

    @admin.display(description="revision")
    def revise(self, obj: InstrumentVersion) -> str:
        return format_html('<a href="{}?from={}">Revise: a new version starting from this text</a>',
                           reverse("admin:instrument_instrumentversion_add"), obj.pk)

    @admin.display(description="YAML")
    def source_text(self, obj: InstrumentVersion) -> str:
        return format_html('<pre style="max-height: 40em; overflow: auto">{}</pre>', obj.source)
