from django.contrib import admin

from .models import Study


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "is_open", "demo", "representation_order", "consent_version", "declined_count")
    list_filter = ("is_open", "demo", "representation_order")
    readonly_fields = ("declined_count", "created_at")
    prepopulated_fields = {"slug": ("title",)}
