"""Withdrawal: a participant's answers and personal data deleted, only the drawn slot kept."""

from __future__ import annotations

from django.db import transaction

from ..models import Exposure, Participant, PersonalData
from ..signals import participant_withdrawn
from .navigation import lock
from .steps import WITHDRAWN


def withdraw(participant: Participant) -> None:
    """Delete the participant's answers and personal data; keep only the drawn slot (append-only)."""
    with transaction.atomic():
        participant = lock(participant)
        participant.submissions.all().delete()
        participant.page_views.all().delete()
        participant.information_requests.all().delete()
        Exposure.objects.filter(participant=participant).delete()
        PersonalData.objects.filter(participant=participant).delete()
        participant_withdrawn.send(sender=Participant, participant=participant)  # letters: the letter
        participant.state = Participant.State.WITHDRAWN
        participant.fsa = ""
        participant.attention_passed = None
        participant.browser_id = participant.network_hash = participant.honeypot_step = ""
        participant.current_step = WITHDRAWN
        participant.save()
