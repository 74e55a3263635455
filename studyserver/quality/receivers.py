"""Flags recorded as the participant goes: on completion (after the page's transaction commits)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from studyserver.survey.models import Participant


@receiver(post_save, sender=Participant, dispatch_uid="quality-on-participant-saved")
def participant_saved(sender: type, instance: Participant, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.state == Participant.State.COMPLETED and (update_fields is None or "state" in update_fields):
        from .services import record_flags

        # After the commit: the flags read the stored pages, and never delay or undo the page itself.
        transaction.on_commit(lambda pk=instance.pk: record_flags(pk))
    elif instance.state == Participant.State.WITHDRAWN:
        from .models import ParticipantQuality

        ParticipantQuality.objects.filter(participant_id=instance.pk).delete()
