"""Source photos, the flooded stimuli made from them, and each stimulus' review history.

A *slot* is where a stimulus can be shown: ``house`` and ``district_landmark`` per electoral
district, ``provincial_landmark`` per province, ``distant`` once for the whole study (a real flood
photo shown as is). Only approved stimuli reach participants; everything that produced a stimulus
(source, mask, backend, model version, parameters, seed) stays attached to it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from studyserver.core.times import shown


class Kind(models.TextChoices):
    HOUSE = "house", "Typical house in the district"
    DISTRICT_LANDMARK = "district_landmark", "Landmark of the district"
    PROVINCIAL_LANDMARK = "provincial_landmark", "Landmark of the province"
    DISTANT = "distant", "Distant flood (real photo, shown as is)"


DISTRICT_KINDS = (Kind.HOUSE.value, Kind.DISTRICT_LANDMARK.value)
PHOTO_BACKEND = "photo"  # the backend recorded for a stimulus shown as is (the distant arm)


def new_public_id() -> str:
    """An unguessable URL-safe id (128 bits): image URLs reveal nothing and cannot be enumerated."""
    return secrets.token_urlsafe(16)


class SourcePhoto(models.Model):
    class Origin(models.TextChoices):
        UPLOAD = "upload", "Uploaded in the admin"
        BULK = "bulk", "Bulk zip upload"
        STREETVIEW = "streetview", "Street View Static API"
        DEMO = "demo", "Simulated world (DEMO)"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    district = models.ForeignKey(
        "geo.District", null=True, blank=True, on_delete=models.PROTECT, related_name="source_photos",
        help_text="For house and district landmark photos.",
    )
    province_code = models.CharField(
        max_length=2, blank=True, db_index=True,
        help_text="Two letters (e.g. QC). Set for provincial landmarks; copied from the district otherwise.",
    )
    place_name_en = models.CharField(
        max_length=200, help_text="The caption reads \u201cA flood in\u201d followed by this name, e.g. "
        "\u201cthe Rideau Canal, Ottawa\u201d. For the distant photo, say where and when "
        "(e.g. \u201cSylhet, Bangladesh, June 2022\u201d): the debrief repeats it.")
    place_name_fr = models.CharField(
        max_length=200, blank=True, help_text="The French caption reads \u201cUne inondation :\u201d followed by "
        "this name. Empty: the English name.")
    image = models.ImageField(upload_to="treatments/sources/%Y/%m/")
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.UPLOAD)
    is_demo = models.BooleanField(
        default=False, help_text="A simulated-world DEMO picture: never to be shown in a real study."
    )
    credit = models.CharField(max_length=300, blank=True, help_text="Photographer / licence / API.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "province_code", "id"]

    def __str__(self) -> str:
        demo = "DEMO " if self.is_demo else ""
        return f"{demo}{self.get_kind_display()}: {self.place_name_en} (#{self.pk})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The province of a district photo always follows its district, so one column serves the
        # per-province coverage query for every kind.
        if self.district_id is not None and self.kind in DISTRICT_KINDS:
            self.province_code = self.district.province_code
        if self.kind == Kind.DISTANT:
            self.province_code = ""
        self.province_code = self.province_code.upper()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = slot_errors(self.kind, self.district, self.province_code)
        if errors:
            raise ValidationError(errors)

    def place_name(self, language: str) -> str:
        return (self.place_name_fr or self.place_name_en) if language == "fr" else self.place_name_en


def slot_errors(kind: str, district: Any, province_code: str) -> dict[str, str]:
    """Field errors for a kind and its slot (also used by the bulk-upload manifest check)."""
    errors: dict[str, str] = {}
    if kind in DISTRICT_KINDS and district is None:
        errors["district"] = f"A {kind} photo needs a district."
    if kind == Kind.PROVINCIAL_LANDMARK:
        if district is not None:
            errors["district"] = "A provincial landmark belongs to a province, not a district."
        if not province_code or len(province_code) != 2:
            errors["province_code"] = "A provincial landmark needs a two-letter province code."
    if kind == Kind.DISTANT and (district is not None or province_code):
        errors["district"] = "The distant photo has no district or province."
    return errors


class Stimulus(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued for generation"
        GENERATED = "generated", "Generated, awaiting review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Generation failed"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    source = models.ForeignKey(SourcePhoto, on_delete=models.PROTECT, related_name="stimuli")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    result = models.FileField(upload_to="treatments/results/", blank=True)
    mask = models.FileField(upload_to="treatments/masks/", blank=True)
    backend = models.CharField(max_length=40, blank=True)
    model_version = models.CharField(max_length=128, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="Generation parameters as recorded.")
    seed = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    # Sending the generation task to the broker: how often, and why the last send failed ("" once
    # the broker took it). A stimulus that could not be sent is sent again by the sweep when due.
    sends = models.PositiveIntegerField(default=0)
    send_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name_plural = "stimuli"
        ordering = ["-created_at", "-id"]
        permissions = [("review_stimulus", "Can approve, reject and regenerate stimuli")]
        indexes = [models.Index(fields=["status", "source"], name="stimulus_status_source")]

    def __str__(self) -> str:
        return f"Stimulus {self.pk} ({self.status}) of {self.source}"

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def image_url(self) -> str:
        return reverse("treatments:image", kwargs={"public_id": self.public_id})

    def place_name(self, language: str) -> str:
        return self.source.place_name(language)

    def provenance(self) -> dict[str, str]:
        return {
            "stimulus_id": self.public_id,
            "generator_backend": self.backend,
            "model_version": self.model_version,
        }


class ReviewEvent(models.Model):
    """One review decision. Append-only: rows are never edited or deleted."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        REGENERATE = "regenerate", "Regenerated with a new seed"

    stimulus = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="review_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} stimulus {self.stimulus_id} at {shown(self.at)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Review events are append-only; record a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Review events are append-only and cannot be deleted.")
