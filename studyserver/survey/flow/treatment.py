"""The treatment page: the stimulus a participant sees (chosen once), the exposure clock started
when the page is first served, and the minimum display time before they may go on."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from studyserver.treatments.models import Stimulus
from studyserver.treatments.services import stimulus_for

from ..models import Exposure, Participant
from .exceptions import StepNotAvailable
from .navigation import check_current, lock
from .records import record_page_served, store_submission
from .steps import TREATMENT, arm_of, next_step

#: What the page shows of the stimulus (its image link and the place in the caption): the other
#: twenty-odd columns of the stimulus and its source photo cost every first serve their compiling.
SHOWN_FIELDS = ("public_id", "source__place_name_en", "source__place_name_fr")


def exposure_of(participant: Participant) -> Exposure | None:
    """The participant's exposure (read once per participant object, then kept on it)."""
    try:
        return participant.exposure
    except Exposure.DoesNotExist:
        return None


def stimulus_shown(participant: Participant, exposure: Exposure | None = None) -> Any:
    """The stimulus this participant sees: the one first served to them, on every later reload.

    Chosen once (an image approved or replaced later does not change what a participant already
    saw); ``None`` when no approved image is available for their arm and district, or the one
    they were shown has since been rejected. ``exposure``: the participant's, if already read.
    """
    exposure = exposure or exposure_of(participant)
    if exposure is not None and exposure.stimulus_id:
        # Only while it is approved: a researcher who withdraws an image withdraws it from everyone.
        shown = Stimulus.objects.filter(public_id=exposure.stimulus_id, status=Stimulus.Status.APPROVED)
        return next(iter(shown.select_related("source").only(*SHOWN_FIELDS)[:1]), None)
    return stimulus_for(arm_of(participant), participant.district, study=participant.study, fields=SHOWN_FIELDS)


def treatment_served(participant: Participant, stimulus_id: str, exposure: Exposure | None = None) -> Exposure:
    """The first time the page is served starts the exposure clock; reloads do not restart it.

    The first serve also records its page view, in the same transaction as the clock (one commit
    where there were two); the caller records the page view of every later serve itself.
    """
    if exposure is not None:
        return exposure
    # Known to be missing a moment ago: one insert (cheaper than an upsert through bulk_create, and
    # not get_or_create's second read). A concurrent first serve (two tabs) that stored it first
    # wins: its clock is the one kept and returned.
    created = Exposure(participant=participant, page_served_at=timezone.now(), stimulus_id=stimulus_id)
    try:
        with transaction.atomic():
            created.save(force_insert=True)
            record_page_served(participant, TREATMENT)
    except IntegrityError:
        created = Exposure.objects.get(participant=participant)
        record_page_served(participant, TREATMENT)
    participant.exposure = created  # later reads of this participant object see it (no query)
    return created


def seconds_left(participant: Participant, exposure: Exposure | None = None) -> float:
    exposure = exposure or exposure_of(participant)
    if exposure is None:
        return float(participant.study.min_exposure_seconds)
    shown = (timezone.now() - exposure.page_served_at).total_seconds()
    return max(participant.study.min_exposure_seconds - shown, 0.0)


def submit_treatment(participant: Participant) -> tuple[Participant, bool]:
    """(participant, accepted). Too early (before the minimum display time) is refused and counted."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = lock(participant)
        check_current(participant, TREATMENT, instrument)
        exposure = Exposure.objects.select_for_update().filter(participant=participant).first()
        if exposure is None:
            raise StepNotAvailable(TREATMENT)
        if seconds_left(participant) > 0:
            exposure.early_submit_attempts += 1
            exposure.save(update_fields=["early_submit_attempts"])
            return participant, False
        now = timezone.now()
        exposure.submitted_at = now
        exposure.save(update_fields=["submitted_at"])
        store_submission(participant, TREATMENT, {})
        participant.state = Participant.State.EXPOSED
        participant.exposed_at = now
        participant.current_step = next_step(participant, TREATMENT, instrument)
        participant.save()
    return participant, True
