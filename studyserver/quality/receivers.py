"""Flags recorded as the participant goes: on completion (after the page's transaction commits);
a withdrawn participant's record goes with their data (``survey.signals.participant_withdrawn``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from studyserver.survey.models import Participant
from studyserver.survey.signals import participant_withdrawn


@receiver(post_save, sender=Participant, dispatch_uid="quality-on-participant-saved")
def participant_saved(sender: type, instance: Participant, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.state == Participant.State.COMPLETED and (update_fields is None or "state" in update_fields):
        from .services import record_flags

        # After the commit: the flags read the stored pages, and never delay or undo the page itself.
        transaction.on_commit(lambda pk=instance.pk: record_flags(pk))


@receiver(participant_withdrawn, dispatch_uid="quality-on-withdrawal")
def participant_withdrew(sender: type, participant: Participant, **kwargs: Any) -> None:
    from .models import ParticipantQuality

    ParticipantQuality.objects.filter(participant_id=participant.pk).delete()
