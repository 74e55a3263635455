"""The flags recorded for a participant as completes accumulate (the export recomputes them, final)."""

from __future__ import annotations

from django.db import models


class ParticipantQuality(models.Model):
    """A participant's respondent-quality flags when last computed (on completion, or by the
    ``quality_flags --store`` command). Never shown to the participant."""

    participant = models.OneToOneField("survey.Participant", on_delete=models.CASCADE, related_name="quality")
    flags = models.CharField(max_length=200, blank=True, help_text="Flag names, ';'-separated (empty: none).")
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "participant quality flags"

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.flags or 'no flag'}"
