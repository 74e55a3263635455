"""Stored questionnaire versions: each one an immutable YAML text identified by its content hash.

A study points to one version and every participant keeps the version they started with, so the
forms, the flow, the export and the codebook of a participant always read the text they answered.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .definition import Instrument, cached_instrument, instrument_from_source


class ImmutableVersionError(ValidationError):
    """A stored version was about to be changed in place (a revision is a new version)."""


class InstrumentVersion(models.Model):
    """One questionnaire version, as loaded (``load_instrument FILE`` or the admin upload)."""

    content_hash = models.CharField(max_length=64, unique=True, editable=False,
                                    help_text="SHA-256 of the YAML text: the version's identity.")
    label = models.CharField(max_length=40, unique=True, editable=False,
                             help_text="The file's `version:`, as recorded with each participant and in exports.")
    consent_version = models.CharField(max_length=20, editable=False,
                                       help_text="The file's consent label and a hash of the consent text.")
    source = models.TextField(editable=False, help_text="The YAML text, exactly as loaded.")
    filename = models.CharField(max_length=255, blank=True, editable=False)
    note = models.CharField(max_length=300, blank=True, help_text="What changed, for the research team.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "questionnaire version"

    def __str__(self) -> str:
        return f"{self.label} ({self.content_hash[:8]})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            identity = ("content_hash", "label", "consent_version", "source")
            stored = InstrumentVersion.objects.filter(pk=self.pk).values_list(*identity).first()
            if stored is not None and stored != tuple(getattr(self, name) for name in identity):
                raise ImmutableVersionError(
                    f"Questionnaire version {self.label} cannot be edited: load the revision as a new version."
                )
        super().save(*args, **kwargs)

    @property
    def instrument(self) -> Instrument:
        """The parsed definition (parsed once per process: see ``instrument_from_source``)."""
        return instrument_from_source(self.source, self.content_hash)


def instrument_for_hash(digest: str) -> Instrument:
    """The parsed instrument of the stored version ``digest``: no query once parsed in this process."""
    cached = cached_instrument(digest)
    if cached is not None:
        return cached
    source = InstrumentVersion.objects.values_list("source", flat=True).get(content_hash=digest)
    return instrument_from_source(source, digest)
