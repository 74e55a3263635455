"""A study: one fielded experiment with its versioned consent, instrument and exit redirects."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F


class Study(models.Model):
    class RepresentationOrder(models.TextChoices):
        RO_2013 = "2013", "2013 Representation Order (338 districts)"
        RO_2023 = "2023", "2023 Representation Order (343 districts)"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    is_open = models.BooleanField(default=False, help_text="Participants can enter only while open.")
    demo = models.BooleanField(default=False, help_text="Demo study: images are simulated-world DEMO pictures.")
    consent_version = models.CharField(max_length=20, default="1.0")
    representation_order = models.CharField(
        max_length=4, choices=RepresentationOrder.choices, default=RepresentationOrder.RO_2023
    )
    min_exposure_seconds = models.PositiveIntegerField(
        default=10, help_text="Minimum time the treatment image is shown before Continue is accepted."
    )
    exclusion_rules = models.TextField(
        blank=True,
        default="Attention is measured before treatment only; nobody is excluded on a post-treatment answer.",
        help_text="Fixed before fielding; recorded with the study's version.",
    )
    complete_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_COMPLETE_URL.")
    screenout_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_SCREENOUT_URL.")
    overquota_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_OVERQUOTA_URL.")
    assignment_quota = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Stop after this many participants are randomized: later ones go to the over-quota URL. "
        "Empty: no quota.",
    )
    # Geocoding: when a postal code is placed without asking the participant (geo/README.md).
    fsa_area_threshold = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="An FSA is placed without asking when one district holds at least this share of its area.",
    )
    postal_code_threshold = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="A full postal code is placed without asking when one district holds at least this share "
        "of its addresses.",
    )
    declined_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Anonymous count of people who declined consent."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title

    def exit_url(self, kind: str, panel_id: str | None) -> str:
        """The panel redirect for ``kind`` in {complete, screenout, overquota}, with the id filled in."""
        template = {
            "complete": self.complete_url_template or settings.PANEL_COMPLETE_URL,
            "screenout": self.screenout_url_template or settings.PANEL_SCREENOUT_URL,
            "overquota": self.overquota_url_template or settings.PANEL_OVERQUOTA_URL,
        }[kind]
        return template.replace("{pid}", quote(panel_id or "", safe=""))

    def quota_reached(self) -> bool:
        """True when the study has randomized as many participants as its quota allows."""
        if self.assignment_quota is None:
            return False
        from studyserver.assignment.models import Assignment

        return Assignment.objects.filter(study=self).count() >= self.assignment_quota

    def record_decline(self) -> None:
        Study.objects.filter(pk=self.pk).update(declined_count=F("declined_count") + 1)
