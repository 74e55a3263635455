from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .models import EXIT_KINDS, Study
from .readiness import BLOCKER, blockers, confirmations, readiness, scheme_for

OPEN_PERMISSION = "studies.open_study"


class StudyForm(forms.ModelForm):
    """The study form; opening it (is_open false → true) runs the readiness check first."""

    confirm_test_weights = forms.BooleanField(
        required=False, label="Open with images made by the test weights",
        help_text="Needed only when the readiness check says so.",
    )
    request: HttpRequest | None = None

    class Meta:
        model = Study
        fields = ("title", "slug", "demo", "is_open", "representation_order", "scope", "scope_provinces",
                  "scope_districts", "panel_id_parameter", "panel_parameters", "complete_url_template",
                  "screenout_url_template", "overquota_url_template", "declined_url_template",
                  "assignment_quota", "consent_version", "min_exposure_seconds", "exclusion_rules")

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


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    form = StudyForm
    list_display = ("title", "slug", "is_open", "demo", "scope", "representation_order", "consent_version",
                    "declined_count", "researcher_pages")
    list_filter = ("is_open", "demo", "representation_order", "scope")
    readonly_fields = ("declined_count", "created_at", "researcher_pages", "before_opening")
    prepopulated_fields = {"slug": ("title",)}
    fieldsets = (
        (None, {"fields": ("title", "slug", "demo", "is_open", "confirm_test_weights")}),
        ("Before opening: design, panel links, texts and readiness", {"fields": ("before_opening",)}),
        ("Scope", {"fields": ("representation_order", "scope", "scope_provinces", "scope_districts")}),
        ("Panel", {"fields": ("panel_id_parameter", "panel_parameters", "complete_url_template",
                              "screenout_url_template", "overquota_url_template", "declined_url_template",
                              "assignment_quota")}),
        ("Protocol", {"fields": ("consent_version", "min_exposure_seconds", "exclusion_rules")}),
        ("Record", {"fields": ("declined_count", "created_at", "researcher_pages")}),
    )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request: HttpRequest, obj: Study, form: Any, change: bool) -> None:
        from studyserver.assignment.services import ensure_scheme

        super().save_model(request, obj, form, change)
        # The scheme exists from the start, so arms, ratios and strata can be seen and changed
        # before anyone is randomized (it freezes at the first draw).
        ensure_scheme(obj)
        for warning in getattr(form, "opening_warnings", []):
            messages.warning(request, warning)

    @admin.display(description="overview")
    def before_opening(self, study: Study) -> str:
        """Arms, ratios, strata, scope, panel URLs with test links, texts and readiness, in one place."""
        from studyserver.instrument.definition import get_instrument
        from studyserver.survey.flow import debrief_key
        from studyserver.treatments.services import CONTROL_ARM

        scheme = scheme_for(study)
        instrument = get_instrument()
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

