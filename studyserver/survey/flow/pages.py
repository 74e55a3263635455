"""Questionnaire pages: storing one, a correction of a pre-treatment page, and what follows it
(the arm drawn after the last pre-treatment page, the information e-mails, completion)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from studyserver.instrument.definition import INFORMATION_EMAIL, Page

from ..models import Participant, PersonalData, merged_answers, page_submissions
from ..signals import page_submitted
from .draw import finish_pre_treatment
from .emails import queue_information_emails
from .navigation import lock, revising
from .records import store_submission
from .steps import DEBRIEF, next_step


@dataclass(frozen=True)
class PageAnswers:
    """What a questionnaire page is shown with of the participant's answers."""

    earlier: dict[str, Any]  # every answer stored, a later page's winning: what the conditions read
    stored: dict[str, Any] | None  # the page's own stored answers, pre-filled (None: nothing to pre-fill)


def answers_for_page(participant: Participant, step: str, *, resumed_elsewhere: bool = False) -> PageAnswers:
    """The answers a questionnaire page is shown with, from one read of the participant's pages.

    A browser that took the participant over by panel id sees no stored answer pre-filled.
    """
    submissions = page_submissions(participant)
    stored = None if resumed_elsewhere else next(
        (answers for key, answers, _ in submissions if key == step), None)
    return PageAnswers(merged_answers(submissions), stored)


def submit_page(participant: Participant, page: Page, answers: Mapping[str, Any], personal: Mapping[str, str],
                submitted: Mapping[str, str] | None = None) -> Participant:
    """Store one questionnaire page; the last pre-treatment page settles eligibility and draws the arm.

    ``submitted`` is the form as the browser sent it: what the page showed beyond its questions
    comes back in it (letters: whom the letter shown was addressed to)."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = lock(participant)
        editing = revising(participant, page.key, instrument)
        store_submission(participant, page.key, answers)
        if personal:
            PersonalData.objects.update_or_create(participant=participant, defaults=dict(personal))
        page_submitted.send(sender=Participant, participant=participant, page=page, answers=answers,
                            submitted=submitted or {}, language=participant.language,
                            instrument=instrument)  # letters: the letter
        if editing:
            return participant
        after = next_step(participant, page.key, instrument)
        if page.phase == "pre" and after not in {p.key for p in instrument.pages_in_phase("pre")}:
            return finish_pre_treatment(participant, instrument)
        if page.role == INFORMATION_EMAIL:
            queue_information_emails(participant, instrument)
        participant.current_step = after
        if after == DEBRIEF:
            participant.state = Participant.State.COMPLETED
            participant.completed_at = timezone.now()
        participant.save()
    return participant
