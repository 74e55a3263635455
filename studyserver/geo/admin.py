from django.contrib import admin

from .models import District, FsaBoundary, FsaPlacement, PostalArea, PostalCodePlacement


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ("fed_code", "name_en", "name_fr", "province_code", "representation_order", "area_km2", "has_boundary")
    list_filter = ("representation_order", "province_code")
    search_fields = ("fed_code", "name_en", "name_fr")
    readonly_fields = ("min_lon", "min_lat", "max_lon", "max_lat", "area_km2", "source", "loaded_at")

    @admin.display(boolean=True, description="boundary")
    def has_boundary(self, obj: District) -> bool:
        return obj.has_geometry


@admin.register(PostalArea)
class PostalAreaAdmin(admin.ModelAdmin):
    list_display = ("fsa", "place_name", "province_code", "lat", "lon", "accuracy", "spread_km")
    list_filter = ("province_code",)
    search_fields = ("fsa", "place_name")


@admin.register(FsaPlacement)
class FsaPlacementAdmin(admin.ModelAdmin):
    """Read-only: placements are recomputed by load_districts / build_fsa_candidates."""

    list_display = ("fsa", "representation_order", "province_code", "method", "decided_fed_code", "snapped",
                    "extent_km", "nearest_other_km", "candidate_count", "source")
    list_filter = ("representation_order", "method", "province_code", "snapped")
    search_fields = ("fsa", "decided_fed_code")

    @admin.display(description="candidates")
    def candidate_count(self, obj: FsaPlacement) -> int:
        return len(obj.candidates)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _ReadOnly(admin.ModelAdmin):
    """Loaded by management commands (load_fsa_boundaries, load_addresses): shown, never edited here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FsaBoundary)
class FsaBoundaryAdmin(_ReadOnly):
    list_display = ("fsa", "province_code", "area_km2", "source", "loaded_at")
    list_filter = ("province_code",)
    search_fields = ("fsa",)
    exclude = ("geometry_wkb",)


@admin.register(PostalCodePlacement)
class PostalCodePlacementAdmin(_ReadOnly):
    list_display = ("postal_code", "representation_order", "decided_fed_code", "addresses", "source")
    list_filter = ("representation_order",)
    search_fields = ("postal_code", "decided_fed_code")
