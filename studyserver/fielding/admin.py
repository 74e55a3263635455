from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from studyserver.assignment.services import ensure_scheme
from studyserver.core.times import shown
from studyserver.instrument.admin import participant_texts
from studyserver.instrument.models import InstrumentVersion
from studyserver.instrument.versions import instrument_problems
from studyserver.studies.arms import CONTROL_ARM
from studyserver.studies.exclusions import flag_choices
from studyserver.studies.models import EXIT_KINDS, Study, StudyVersionChange
from studyserver.survey.flow import debrief_key

from .copying import copy_study
from .readiness import BLOCKER, blockers, confirmations, readiness, scheme_for

MOVE_PERMISSION = "studies.change_study_questionnaire"
COPY_PERMISSION = "studies.copy_study"
OPEN_PERMISSION = "studies.open_study"


class StudyForm(forms.ModelForm):
    """The study form; opening it (is_open false → true) runs the readiness check first."""

    confirm_test_weights = forms.BooleanField(
        required=False, label="Open with images made by the test weights",
        help_text="Needed only when the readiness check says so.",
    )
    exclusion_flags = forms.MultipleChoiceField(
        choices=flag_choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Pre-registered exclusions",
        help_text="A participant with any ticked flag is excluded from the pre-registered sample (export column "
        "excluded); the analysis also reports everyone. Flags never stop or tell a participant. Frozen when "
        "the study first opens.",
    )
    request: HttpRequest | None = None

    class Meta:
        model = Study
        fields = ("title", "slug", "demo", "is_open", "representation_order", "scope", "scope_provinces",
                  "scope_districts", "panel_id_parameter", "panel_parameters", "complete_url_template",
                  "screenout_url_template", "overquota_url_template", "declined_url_template",
                  "assignment_quota", "require_signed_entry", "entry_secret", "questionnaire",
                  "min_exposure_seconds", "exclusion_rules", "exclusion_flags")
        # The form field refuses a negative quota before the model's "at least 1" runs: one message
        # for 0 and -5 alike (was Django's "greater than or equal to 0" for -5).
        error_messages = {"assignment_quota": {"min_value": Study.QUOTA_MESSAGE}}

    def _post_clean(self) -> None:
        super()._post_clean()  # the instance now holds the submitted values
        self.opening_warnings: list[str] = []
        study = self.instance
        if self._errors or not study.is_open:
            return
        if study.pk and Study.objects.filter(pk=study.pk, is_open=True).exists():
            return  # already open: editing it is not opening it again
        user = getattr(self.request, "user", None)
        if user is None or not user.has_perm(OPEN_PERMISSION):
            self.add_error("is_open", f"You may not open a study (permission {OPEN_PERMISSION}).")
            return
        reasons = readiness(study)
        if study.demo:
            self.opening_warnings = [f"Opened although: {r.message}" for r in blockers(reasons)]
        else:
            for reason in blockers(reasons):
                self.add_error("is_open", f"Not ready for its scope: {reason.message}")
        needs = confirmations(reasons)
        if needs and not self.cleaned_data.get("confirm_test_weights"):
            for reason in needs:
                self.add_error("confirm_test_weights", f"{reason.message} Tick the box to open anyway.")




class MoveVersionForm(forms.Form):
    version = forms.ModelChoiceField(queryset=InstrumentVersion.objects.none(), label="Questionnaire version",
                                     to_field_name="content_hash")
    confirm = forms.BooleanField(label="New participants get this version; people already in the study keep theirs.")

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = InstrumentVersion.objects.exclude(content_hash=study.questionnaire_id)


class CopyStudyForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(help_text="The new study's address: /s/SLUG/.")

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if Study.objects.filter(slug=slug).exists():
            raise ValidationError(f"A study with the slug {slug!r} already exists.")
        return slug


class StudyVersionChangeInline(admin.TabularInline):
    model = StudyVersionChange
    fk_name = "study"
    extra = 0
    can_delete = False
    fields = readonly_fields = ("changed_at", "from_version", "to_version", "changed_by", "participants_before")
    verbose_name_plural = "questionnaire version changes"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    form = StudyForm
    list_display = ("title", "slug", "is_open", "demo", "scope", "representation_order", "questionnaire_label",
                    "consent_version", "declined_count", "researcher_pages")
    list_filter = ("is_open", "demo", "representation_order", "scope")
    readonly_fields = ("declined_count", "created_at", "researcher_pages", "consent_version", "questionnaire_since",
                       "questionnaire_actions", "participant_texts", "before_opening", "exclusion_frozen_at")
    prepopulated_fields = {"slug": ("title",)}
    fieldsets = (
        (None, {"fields": ("title", "slug", "demo", "is_open", "confirm_test_weights")}),
        ("Before opening: design, panel links, texts and readiness", {"fields": ("before_opening",)}),
        ("Questionnaire", {"fields": ("questionnaire", "consent_version", "questionnaire_since",
                                      "questionnaire_actions", "participant_texts")}),
        ("Scope", {"fields": ("representation_order", "scope", "scope_provinces", "scope_districts")}),
        ("Panel", {"fields": ("panel_id_parameter", "panel_parameters", "complete_url_template",
                              "screenout_url_template", "overquota_url_template", "declined_url_template",
                              "assignment_quota", "require_signed_entry", "entry_secret")}),
        ("Protocol", {"fields": ("min_exposure_seconds", "exclusion_rules", "exclusion_flags",
                                 "exclusion_frozen_at")}),
        ("Record", {"fields": ("declined_count", "created_at", "researcher_pages")}),
    )

    def get_inlines(self, request: HttpRequest, obj: Study | None = None) -> list[type[admin.TabularInline]]:
        # Only once there is a move to show: a new study's form then needs no inline management data.
        return [StudyVersionChangeInline] if obj is not None and obj.version_changes.exists() else []

    def get_fieldsets(self, request: HttpRequest, obj: Study | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm("studies.change_study"):
            return fieldsets
        # The entry secret signs entry links: only those who may change the study see it.
        return [(name, {**options, "fields": tuple(f for f in options["fields"] if f != "entry_secret")})
                for name, options in fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Study | None = None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.participants.exists():
            fields += ("questionnaire",)  # fixed: a move goes through the recorded action
        if obj is not None and obj.exclusion_frozen_at is not None:
            fields += ("exclusion_flags",)  # pre-registered: frozen since the study first opened
        return fields

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None):
        study = self.get_object(request, object_id)
        if study is not None and request.method == "GET":
            for problem in instrument_problems(study.questionnaire, demo=study.demo):
                self.message_user(request, problem, messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        own = [
            path("<int:pk>/move-version/", self.admin_site.admin_view(self.move_version_view),
                 name="studies_study_move_version"),
            path("<int:pk>/copy/", self.admin_site.admin_view(self.copy_view), name="studies_study_copy"),
        ]
        return own + super().get_urls()

    @admin.display(description="questionnaire", ordering="questionnaire__label")
    def questionnaire_label(self, study: Study) -> str:
        return study.questionnaire.label if study.questionnaire_id else ""

    @admin.display(description="questionnaire actions")
    def questionnaire_actions(self, study: Study) -> str:
        if study.pk is None:
            return "(after saving)"
        return format_html_join(" · ", '<a href="{}">{}</a>', (
            (reverse("admin:studies_study_move_version", args=[study.pk]), "Move to another questionnaire version"),
            (reverse("admin:studies_study_copy", args=[study.pk]), "New study from this one"),
            (reverse("admin:instrument_instrumentversion_change", args=[study.questionnaire.pk]), "See the version"),
        ))

    @admin.display(description="consent and debrief participants see")
    def participant_texts(self, study: Study) -> str:
        if study.pk is None:
            return "(after saving)"
        return participant_texts(study.instrument)

    def _form_page(self, request: HttpRequest, pk: int, permission: str,
                   form_for: Callable[[Study, Any], forms.Form],
                   act: Callable[[Study, dict[str, Any]], tuple[Study, str]],
                   page: Callable[[Study], dict[str, Any]]) -> HttpResponse:
        """A study page with one form: the permission, the form, then ``act`` (or the form again)."""
        if not request.user.has_perm(permission):
            raise PermissionDenied
        study = get_object_or_404(Study, pk=pk)
        form = form_for(study, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                target, message = act(study, form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(request, message)
                return HttpResponseRedirect(reverse("admin:studies_study_change", args=[target.pk]))
        return TemplateResponse(request, "admin/studies/study_form_page.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "study": study, "form": form,
            **page(study),
        }, status=400 if request.method == "POST" else 200)

    def move_version_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(study: Study, data: dict[str, Any]) -> tuple[Study, str]:
            change = study.move_to_version(data["version"], user=request.user)
            # "Study …" first: the admin capitalises a message's first letter, and a slug is lower case.
            return study, (f"Study {study.slug} moved to {change.to_version} at {shown(change.changed_at)}; "
                           f"its {change.participants_before} earlier participants keep their version.")

        return self._form_page(request, pk, MOVE_PERMISSION, lambda study, data: MoveVersionForm(data, study=study), act,
                               lambda study: {
            "title": f"Move {study.slug} to another questionnaire version", "submit_label": "Move",
            "explanation": [
                f"Now: {study.questionnaire} since {shown(study.questionnaire_since)}, "
                f"{study.participants.count()} participants.",
                "Participants who already started keep the version they started with, on every page and in "
                "the export (its instrument_version column names it). The move is recorded with the time.",
            ],
        })

    def copy_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(study: Study, data: dict[str, Any]) -> tuple[Study, str]:
            copy = copy_study(study, slug=data["slug"], title=data["title"])
            return copy, (f"Created {copy.slug} (closed) from {study.slug}: settings, questionnaire version "
                          f"{copy.questionnaire} and allocation scheme configuration.")

        def form_for(study: Study, data: Any) -> CopyStudyForm:
            return CopyStudyForm(data, initial={"title": f"{study.title} (copy)", "slug": f"{study.slug}-2"})

        return self._form_page(request, pk, COPY_PERMISSION, form_for, act, lambda study: {
            "title": f"New study from {study.slug}", "submit_label": "Create the study",
            "explanation": [
                "Copies the settings, the questionnaire version, the allocation scheme configuration and "
                "the use of the same treatment material. Never participants, answers or personal data. "
                "The new study starts closed.",
            ],
        })

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request: HttpRequest, obj: Study, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # The scheme exists from the start, so arms, ratios and strata can be seen and changed
        # before anyone is randomized (it freezes at the first draw).
        ensure_scheme(obj)
        for warning in getattr(form, "opening_warnings", []):
            messages.warning(request, warning)

    @admin.display(description="overview")
    def before_opening(self, study: Study) -> str:
        """Arms, ratios, strata, scope, panel URLs with test links, texts and readiness, in one place."""

        scheme = scheme_for(study)
        instrument = study.instrument
        kept = study.kept_parameters()
        test_values = {name: f"TEST-{name}" for name in kept}
        reasons = readiness(study)
        context = {
            "study": study,
            "scheme": scheme,
            "scheme_url": reverse("admin:assignment_allocationscheme_change", args=[scheme.pk]) if scheme.pk else "",
            "ratio_sum": scheme.ratio_sum,
            "arms": [{"arm": arm, "ratio": ratio, "share": f"{100 * ratio / scheme.ratio_sum:.0f}%"}
                     for arm, ratio in scheme.ratios.items()],
            "district_count": study.districts_in_scope().count(),
            "coverage_url": f"{reverse('admin:treatments_coverage')}?study={study.slug}" if study.pk else "",
            "entry_url": study.entry_url() if study.pk else "",
            "kept": kept,
            "exits": [{"kind": kind, "template": study.exit_template(kind),
                       "test_url": study.exit_url(kind, "TEST", test_values)} for kind in EXIT_KINDS],
            "consent_version": study.consent_version,
            "instrument_version": instrument.version,
            "debriefs": [(arm, instrument.text(debrief_key(arm), "en", place="[the place name of the image shown]"))
                         for arm in (scheme.arms or (CONTROL_ARM,))],
            "reasons": reasons,
            "blocked": any(r.level == BLOCKER for r in reasons),
        }
        return mark_safe(render_to_string("studies/admin/before_opening.html", context))  # noqa: S308 (escaped template)

    def get_exclude(self, request, obj=None):
        # The entry secret signs entry links: only those who may change the study see it.
        return [] if request.user.has_perm("studies.change_study") else ["entry_secret"]

    @admin.display(description="pages")
    def researcher_pages(self, study: Study) -> str:
        """The study's working pages: participant entry, image coverage, balance, funnel and export."""
        if study.pk is None:
            return "(after saving)"
        links = [("entry link", study.entry_url())]
        links.append(("image coverage", f"{reverse('admin:treatments_coverage')}?study={study.slug}"))
        scheme = getattr(study, "allocation_scheme", None)
        if scheme is not None:
            links.append(("balance", reverse("admin:assignment_allocationscheme_balance", args=[scheme.pk])))
        links.append(("funnel and export", f"{reverse('admin:exports_datadownload_changelist')}?study={study.pk}"))
        return format_html_join(" · ", '<a href="{}">{}</a>', ((url, label) for label, url in links))
