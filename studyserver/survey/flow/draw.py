"""The end of the pre-treatment pages: the attention check scored, eligibility settled again, the
quota kept, and the arm drawn (once: ``assignment.services.assign`` is idempotent as a second guard)."""

from __future__ import annotations

from studyserver.assignment import services as assignment
from studyserver.instrument.definition import Instrument
from studyserver.studies.models import Study

from ..models import Participant
from .eligibility import screen_out, screen_out_ineligible
from .steps import next_step


def finish_pre_treatment(participant: Participant, instrument: Instrument) -> Participant:
    """Called with the participant's row locked, after their last pre-treatment page was stored."""
    answers = participant.answers()
    checks = instrument.attention_items
    if checks:
        participant.attention_passed = all(answers.get(item.code) == item.attention_correct for item in checks)
    participant.save()
    # Settled at placement already; checked again because an image may have been withdrawn since.
    eligibility = assignment.check_eligibility(participant)
    if not eligibility.eligible:
        screen_out_ineligible(participant, eligibility)
        return participant
    if participant.study.assignment_quota is not None:
        # The study row is locked so that the last places of the quota go to exactly that many people.
        study = Study.objects.select_for_update().get(pk=participant.study_id)
        if study.quota_reached():
            screen_out(participant, Participant.ScreenOut.OVER_QUOTA)
            return participant
    assignment.assign(participant)
    participant.refresh_from_db()
    participant.current_step = next_step(participant, instrument.pages_in_phase("pre")[-1].key, instrument)
    participant.save()
    return participant
