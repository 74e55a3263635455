"""Federal electoral districts and the FSA → district candidates computed at load time."""

from __future__ import annotations

from django.db import models

from studyserver.core.rows import RowCache


class District(models.Model):
    representation_order = models.CharField(max_length=4, db_index=True)
    fed_code = models.CharField(max_length=5)
    name_en = models.CharField(max_length=200)
    name_fr = models.CharField(max_length=200)
    province_code = models.CharField(max_length=2, db_index=True)
    # Boundary as WKB in EPSG:4326 (lon/lat), made valid at load time; null for names-only orders.
    geometry_wkb = models.BinaryField(null=True, blank=True, editable=False)
    # Bounding box (degrees) so callers can pre-filter without decoding every geometry.
    min_lon = models.FloatField(null=True, blank=True)
    min_lat = models.FloatField(null=True, blank=True)
    max_lon = models.FloatField(null=True, blank=True)
    max_lat = models.FloatField(null=True, blank=True)
    area_km2 = models.FloatField(null=True, blank=True)
    population = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="People in the district as the source counts them (adults 18+ of the 2021 Census in the "
        "2023 reference file, the 2011 population in the 2013 one): with the area, the density that orders "
        "an FSA's candidates by estimated people.")
    source = models.CharField(max_length=300, blank=True, help_text="File or URL the district was loaded from.")
    loaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["representation_order", "fed_code"], name="unique_district_per_order")
        ]
        ordering = ["province_code", "name_en"]

    def __str__(self) -> str:
        return f"{self.name_en} ({self.fed_code})"

    def name(self, language: str) -> str:
        return self.name_fr if language == "fr" else self.name_en

    @property
    def density_km2(self) -> float | None:
        """People per km² (None without a population or an area)."""
        if self.population is None or not self.area_km2:
            return None
        return self.population / self.area_km2

    @property
    def has_geometry(self) -> bool:
        return bool(self.geometry_wkb)

    def geometry(self):
        """The boundary as a shapely geometry (EPSG:4326), or None for a names-only district."""
        if not self.geometry_wkb:
            return None
        import shapely

        return shapely.from_wkb(bytes(self.geometry_wkb))



# A participant's page shows their district's name, never its boundary (up to megabytes in the
# North). Districts change only when reference data is loaded (each saved: the cached row goes).
DISTRICT_ROWS: RowCache[District] = RowCache(District, seconds=3600, defer=("geometry_wkb",))

class PostalArea(models.Model):
    """One Forward Sortation Area (first three characters of a postal code) and its centroid.

    Loaded from the pgeocode cache (``CA.txt``) or the raw GeoNames dump; independent of any
    representation order.
    """

    fsa = models.CharField(max_length=3, unique=True)
    place_name = models.CharField(max_length=300, blank=True)
    province_code = models.CharField(max_length=2, db_index=True)
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    accuracy = models.PositiveSmallIntegerField(null=True, blank=True)
    spread_km = models.FloatField(default=0.0, help_text="Farthest listed place of the FSA from its centroid.")

    class Meta:
        ordering = ["fsa"]

    def __str__(self) -> str:
        return f"{self.fsa} {self.place_name}"


class FsaPlacement(models.Model):
    """Where an FSA lies in one representation order, decided once at load time.

    ``candidates`` is the ordered list of plausible districts (dicts with fed_code, name_en,
    name_fr, score, district_id, distance_km), denormalized so that a lookup is a single
    indexed query; it is rebuilt whenever the districts or the centroids are (re)loaded.
    ``decided_fed_code`` is set only when one district is certain (the participant is not asked).
    With an FSA polygon (methods ``area``/``area_split``) a candidate's score is the share of the
    FSA's area in that district, so a study's own threshold can decide at lookup time.
    """

    class Method(models.TextChoices):
        AREA = "area", "FSA polygon: one district holds at least the threshold share of its area"
        AREA_SPLIT = "area_split", "FSA polygon split between districts: the participant picks"
        CONTAINED = "contained", "centroid well inside one district"
        SOLE_DISTRICT = "sole_district", "the only district of its province"
        SNAPPED = "snapped", "centroid in water, snapped to the nearest district"
        AMBIGUOUS = "ambiguous", "several districts plausible: the participant picks"
        PROVINCE = "province", "no geometry or no district nearby: pick within the province"
        UNPLACEABLE = "unplaceable", "no usable centroid"

    representation_order = models.CharField(max_length=4)
    fsa = models.CharField(max_length=3)
    province_code = models.CharField(max_length=2)
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    extent_km = models.FloatField(null=True, blank=True, help_text="Plausible radius of the FSA around its centroid.")
    nearest_other_km = models.FloatField(
        null=True, blank=True, help_text="Distance from the centroid to the nearest other district of the province."
    )
    method = models.CharField(max_length=16, choices=Method.choices)
    decided_fed_code = models.CharField(max_length=5, blank=True)
    snapped = models.BooleanField(default=False)
    placeable = models.BooleanField(default=True)
    candidates = models.JSONField(default=list)
    source = models.CharField(max_length=300, blank=True, help_text="What the placement was computed from.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["representation_order", "fsa"], name="unique_fsa_placement_per_order")
        ]
        ordering = ["representation_order", "fsa"]

    def __str__(self) -> str:
        return f"{self.fsa} ({self.representation_order}): {self.decided_fed_code or self.method}"


class FsaBoundary(models.Model):
    """An FSA's polygon (e.g. Statistics Canada's 2021 Census FSA boundary file), independent of orders."""

    fsa = models.CharField(max_length=3, unique=True)
    province_code = models.CharField(max_length=2, db_index=True)
    # EPSG:4326, made valid at load time.
    geometry_wkb = models.BinaryField(editable=False)
    area_km2 = models.FloatField()
    source = models.CharField(max_length=300, blank=True, help_text="File or URL the polygon was loaded from.")
    loaded_at = models.DateTimeField()

    class Meta:
        ordering = ["fsa"]
        verbose_name_plural = "FSA boundaries"

    def __str__(self) -> str:
        return f"{self.fsa} ({self.area_km2:.1f} km²)"

    def geometry(self):
        import shapely

        return shapely.from_wkb(bytes(self.geometry_wkb))


class PostalCodePlacement(models.Model):
    """A full postal code's districts in one order, counted from the addresses that carry it.

    ``candidates`` lists every district holding some of the code's addresses (dicts with
    fed_code, name_en, name_fr, score = share of the addresses, district_id), largest share first;
    ``decided_fed_code`` is set when the first holds at least the default threshold (a study's
    own threshold is applied at lookup time). Replaced as a whole by each ``load_addresses`` run.
    """

    representation_order = models.CharField(max_length=4)
    postal_code = models.CharField(max_length=6)
    addresses = models.PositiveIntegerField(help_text="Addresses (or concordance weight) behind the shares.")
    decided_fed_code = models.CharField(max_length=5, blank=True)
    candidates = models.JSONField(default=list)
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["representation_order", "postal_code"],
                                    name="unique_postal_code_placement_per_order")
        ]
        ordering = ["representation_order", "postal_code"]

    def __str__(self) -> str:
        return f"{self.postal_code} ({self.representation_order}): {self.decided_fed_code or 'split'}"
