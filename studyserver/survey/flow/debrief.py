"""The debrief: the text that tells a participant what they saw, and finishing the study."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from studyserver.instrument.definition import Instrument, paragraphs
from studyserver.treatments.models import PHOTO_BACKEND, Stimulus

from ..models import Participant
from .exceptions import StepNotAvailable
from .navigation import lock
from .steps import DEBRIEF, FINISHED, arm_of
from .treatment import exposure_of


def debrief_key(arm: str | None, stimulus: Any = None) -> str:
    """The instrument text telling a participant of ``arm`` what they saw.

    The distant arm's photo is shown as is (a real photograph); should a stimulus of that arm have
    been generated, or be one of the demo's simulated-world pictures (shown as is, but made by a
    computer), it is described as generated: the text follows what was actually shown.
    """
    if arm in {None, "control"}:
        return "debrief_arm_control"
    real_photo = stimulus is None or (stimulus.backend == PHOTO_BACKEND and not stimulus.source.is_demo)
    if arm == "distant" and real_photo:
        return "debrief_arm_distant"
    return "debrief_arm_generated"


def debrief_paragraphs(participant: Participant, language: str, instrument: Instrument | None = None) -> list[str]:
    """The debrief for this participant's arm, then the common part (purpose, resources)."""
    instrument = instrument or participant.instrument
    arm = arm_of(participant)
    # The stimulus recorded on the participant's exposure, if any (the page's participant query read
    # the exposure already).
    exposure = exposure_of(participant)
    stimulus = (Stimulus.objects.select_related("source").filter(public_id=exposure.stimulus_id).first()
                if exposure is not None and exposure.stimulus_id else None)
    place = stimulus.place_name(language) if stimulus is not None else ""
    first = instrument.text(debrief_key(arm, stimulus), language, place=place)
    common = instrument.text("debrief_body", language)
    return [p for p in [first, *paragraphs(common)] if p.strip()]


def finish(participant: Participant) -> Participant:
    """The debrief was read: from now on the panel id counts as having taken the study."""
    with transaction.atomic():
        participant = lock(participant)
        if participant.state != Participant.State.COMPLETED:
            raise StepNotAvailable(DEBRIEF)
        participant.current_step = FINISHED
        participant.save(update_fields=["current_step", "last_seen_at"])
    return participant
