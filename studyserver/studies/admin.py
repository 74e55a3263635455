from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join

from .models import SIGNATURE_PARAMETER, Study


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "is_open", "demo", "representation_order", "consent_version",
                    "declined_count", "researcher_pages")
    list_filter = ("is_open", "demo", "representation_order")
    readonly_fields = ("declined_count", "created_at", "researcher_pages")
    prepopulated_fields = {"slug": ("title",)}

    def get_exclude(self, request, obj=None):
        # The entry secret signs entry links: only those who may change the study see it.
        return [] if request.user.has_perm("studies.change_study") else ["entry_secret"]

    @admin.display(description="pages")
    def researcher_pages(self, study: Study) -> str:
        """The study's working pages: participant entry, image coverage, balance, funnel and export."""
        if study.pk is None:
            return "(after saving)"
        test_link = f"{reverse('survey:enter', args=[study.slug])}?pid=TEST"
        if study.require_signed_entry:
            test_link += f"&{SIGNATURE_PARAMETER}={study.entry_signature('TEST')}"
        links = [("entry link", test_link)]
        links.append(("image coverage", f"{reverse('admin:treatments_coverage')}?study={study.slug}"))
        scheme = getattr(study, "allocation_scheme", None)
        if scheme is not None:
            links.append(("balance", reverse("admin:assignment_allocationscheme_balance", args=[scheme.pk])))
        links.append(("funnel and export", f"{reverse('admin:exports_datadownload_changelist')}?study={study.pk}"))
        return format_html_join(" · ", '<a href="{}">{}</a>', ((url, label) for label, url in links))
