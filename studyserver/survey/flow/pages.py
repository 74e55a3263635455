"""Questionnaire pages: storing one, a correction of a pre-treatment page, and what follows it
(the arm drawn after the last pre-treatment page, the information e-mails, completion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from studyserver.instrument.definition import Page

from ..models import Participant, PersonalData
from .draw import finish_pre_treatment
from .emails import queue_information_emails
from .navigation import check_current, lock
from .records import store_submission
from .steps import DEBRIEF, next_step, revisable, steps_done


def submit_page(participant: Participant, page: Page, answers: Mapping[str, Any], personal: Mapping[str, str]) -> Participant:
    """Store one questionnaire page; the last pre-treatment page settles eligibility and draws the arm."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = lock(participant)
        editing = participant.current_step != page.key and revisable(participant, page.key, instrument) and page.key in steps_done(participant)
        if not editing:
            check_current(participant, page.key, instrument)
        store_submission(participant, page.key, answers)
        if personal:
            PersonalData.objects.update_or_create(participant=participant, defaults=dict(personal))
        if editing:
            return participant
        after = next_step(participant, page.key, instrument)
        if page.phase == "pre" and after not in {p.key for p in instrument.pages_in_phase("pre")}:
            return finish_pre_treatment(participant, instrument)
        if page.key == "info_email":
            queue_information_emails(participant, instrument)
        participant.current_step = after
        if after == DEBRIEF:
            participant.state = Participant.State.COMPLETED
            participant.completed_at = timezone.now()
        participant.save()
    return participant
