"""The sequence of steps: their order, which are shown to whom, the step numbers, what can be revised."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studyserver.instrument.definition import Instrument

from ..models import Participant

CONSENT, POSTAL, DISTRICT, TREATMENT, DEBRIEF = "consent", "postal", "district", "treatment", "debrief"
#: The pages that read the participant's exposure (the image and its clock; the debrief says what was shown).
EXPOSURE_PAGES = frozenset({TREATMENT, DEBRIEF})
# Where a participant is once out of the steps: sent back to the panel, screened out, withdrawn.
FINISHED, SCREENED_OUT, WITHDRAWN = "finished", "screened_out", "withdrawn"


def all_steps(instrument: Instrument) -> list[str]:
    pre = [p.key for p in instrument.pages_in_phase("pre")]
    post = [p.key for p in instrument.pages_in_phase("post")]
    return [CONSENT, POSTAL, DISTRICT, *pre, TREATMENT, *post, DEBRIEF]


def arm_of(participant: Participant) -> str | None:
    assignment = getattr(participant, "assignment", None)
    return assignment.arm if assignment is not None else None


def step_is_visible(participant: Participant, step: str, instrument: Instrument, answers: Mapping[str, Any]) -> bool:
    if step == DISTRICT:
        return participant.district_method in {"", Participant.DistrictMethod.PICKED, Participant.DistrictMethod.FALLBACK}
    if step == TREATMENT:
        return arm_of(participant) not in {None, "control"}
    if step in {CONSENT, POSTAL, DEBRIEF}:
        return True
    return instrument.page(step).visible(answers, participant.province_code)


def next_step(participant: Participant, after: str, instrument: Instrument | None = None) -> str:
    instrument = instrument or participant.instrument
    steps = all_steps(instrument)
    answers = participant.answers()
    for step in steps[steps.index(after) + 1 :]:
        if step_is_visible(participant, step, instrument, answers):
            return step
    return DEBRIEF


def taking_part(participant: Participant) -> bool:
    """Whether the participant is on one of the steps (the pages then show their progress), not
    sent back to the panel, screened out or withdrawn."""
    return participant.current_step not in {FINISHED, SCREENED_OUT, WITHDRAWN}


def _numbered_steps(participant: Participant, instrument: Instrument) -> list[str]:
    """The steps that get a number of their own, the same from the first page to the last, for every arm.

    The district question shares the postal code's number (both are "where you live"), and a
    follow-up page shown only after some answers of the page before (the e-mail address after
    asking for information, the signature after the letter) shares that page's number: whether
    they appear is not known in advance, so counting them would make the total jump. The image
    page shares the number of the questions after it: the control arm, which has no image page,
    is drawn only after the first pages were counted ("Step 7 of 13" then "Step 8 of 12").
    """
    steps = all_steps(instrument)
    numbered = []
    for position, step in enumerate(steps):
        if step in {DISTRICT, TREATMENT}:
            continue
        if step not in {CONSENT, POSTAL, DEBRIEF}:
            page = instrument.page(step)
            previous = steps[position - 1]
            before = {item.code for item in instrument.page(previous).items} if previous not in {
                CONSENT, POSTAL, DISTRICT, TREATMENT, DEBRIEF} else set()
            if page.when is not None and page.when.referenced_items() and page.when.referenced_items() <= before:
                continue
        numbered.append(step)
    return numbered


def progress(participant: Participant, instrument: Instrument | None = None) -> tuple[int, int]:
    """(current step number, total steps) as the participant would count them (see _numbered_steps)."""
    instrument = instrument or participant.instrument
    steps = all_steps(instrument)
    numbered = _numbered_steps(participant, instrument)
    current = participant.current_step
    if current not in steps:
        return 1, len(numbered)
    if current == TREATMENT:
        # The image opens the questions after it: it shows their number.
        current = steps[steps.index(TREATMENT) + 1]
    # A step without a number of its own shows the number of the step it belongs to.
    reached = [step for step in steps[: steps.index(current) + 1] if step in numbered]
    return max(len(reached), 1), len(numbered)


def revisable(participant: Participant, step: str, instrument: Instrument) -> bool:
    """Earlier pages can be corrected until the arm is drawn, never after: where the participant
    lives (the postal code, and the district when they picked it: a correction re-runs placement
    and eligibility) and, once placed, the pre-treatment pages."""
    if step == POSTAL:
        return participant.state in {Participant.State.CONSENTED, Participant.State.PLACED}
    if step == DISTRICT:
        return participant.state in {Participant.State.CONSENTED, Participant.State.PLACED} and \
            participant.district_method in {"", Participant.DistrictMethod.PICKED, Participant.DistrictMethod.FALLBACK}
    if participant.state != Participant.State.PLACED:
        return False
    return step in {p.key for p in instrument.pages_in_phase("pre")}


def steps_done(participant: Participant) -> set[str]:
    return set(participant.submissions.values_list("step", flat=True))


def answers_locked(participant: Participant) -> bool:
    """Whether the earlier answers can no longer change: once the arm is drawn (or the study is over)."""
    return participant.state not in {Participant.State.CONSENTED, Participant.State.PLACED}
