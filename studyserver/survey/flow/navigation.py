"""Navigation and the lock rule: which page a request for a step gets, and which steps a
submission may change (the back button, a bookmarked or typed URL, a stale form, a double submit).

Views ask :func:`visit` before serving a step; every submission locks the participant's row
(:func:`lock`) and asks :func:`check_current` or :func:`revising` before changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from studyserver.instrument.definition import Instrument

from ..models import Participant
from .exceptions import AlreadySubmitted, StepNotAvailable
from .steps import all_steps, answers_locked, revisable, steps_done

LOCKED_NOTICE, ALREADY_SAVED_NOTICE = "locked_notice", "already_saved_notice"


@dataclass(frozen=True)
class Visit:
    """What a request for a step gets: that step, or the participant's current step (with a notice)."""

    serve: bool
    notice: str | None = None  # the instrument text to show on the current step, saying why they are there
    refused: bool = False  # a form posted for a step not reached yet (tampering, a stale form): nothing changes


def visit(participant: Participant, step: str, instrument: Instrument, *, posting: bool,
          resumed_elsewhere: bool = False) -> Visit:
    """The navigation rule, in one place (the back button, a bookmarked or typed URL, a stale form).

    The current step is served. A page already saved is served again while it can be revised
    (:func:`revisable`), except to a browser that took the participant over by panel id (it never
    sees earlier answers); otherwise the participant goes to their current step, told that their
    earlier answers are locked (after assignment) or that the page was saved. A page ahead is never
    served: opening it goes to the current step, posting to it is refused.
    """
    if step == participant.current_step:
        return Visit(True)
    done = steps_done(participant)  # one query, and none on the usual request (the current step)
    if step in done:
        if not resumed_elsewhere and revisable(participant, step, instrument):
            return Visit(True)
        return Visit(False, notice=LOCKED_NOTICE if answers_locked(participant) else ALREADY_SAVED_NOTICE)
    return Visit(False, refused=posting)


def lock(participant: Participant) -> Participant:
    """The participant's row, locked until the transaction ends, as it is now (another request may
    have moved them on since ``participant`` was read)."""
    return Participant.objects.select_for_update().get(pk=participant.pk)


def revising(participant: Participant, step: str, instrument: Instrument) -> bool:
    """False for the current step, True for an earlier page being corrected (see :func:`revisable`);
    any other step raises (nothing is changed)."""
    if participant.current_step != step and step in steps_done(participant) and revisable(participant, step, instrument):
        return True
    check_current(participant, step, instrument)
    return False


def check_current(participant: Participant, step: str, instrument: Instrument) -> None:
    """Nothing to say when ``step`` is the current step; else :class:`AlreadySubmitted` for a step
    behind (stored, or passed by) and :class:`StepNotAvailable` for one ahead."""
    if participant.current_step == step:
        return
    if step in steps_done(participant) or all_steps(instrument).index(step) < all_steps(instrument).index(participant.current_step):
        raise AlreadySubmitted(step)
    raise StepNotAvailable(step)
