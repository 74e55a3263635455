"""The participant flow as plain functions: which step comes next, and what each submission stores.

Views call these and render; every state change happens here, inside a transaction that locks the
participant's row, so a double submit, a reload or two tabs can never duplicate or lose an answer,
and the arm is drawn once (``assignment.services.assign`` is idempotent as a second guard).

One module per idea, lowest first (none imports one listed after it):

- :mod:`.exceptions` — why a request changed nothing (``StepNotAvailable``, ``AlreadySubmitted``).
- :mod:`.steps` — the sequence of steps, who sees which, step numbers, what can still be revised.
- :mod:`.navigation` — which page a request for a step gets (``visit``) and the lock rule every
  submission obeys (``lock``, ``check_current``, ``revising``).
- :mod:`.records` — the page-view record (the only write a GET makes) and stored submissions.
- :mod:`.entry` — arrival, resumption and consent.
- :mod:`.eligibility` — screening out; :mod:`.draw` — the end of the pre-treatment pages and the draw.
- :mod:`.placement` — postal code, district, corrections of either, placement.
- :mod:`.emails` — the information e-mails asked for; :mod:`.pages` — questionnaire pages.
- :mod:`.treatment` — the stimulus shown and the exposure clock; :mod:`.debrief` — the debrief, finishing.
- :mod:`.withdrawal` — withdrawal.

This package re-exports the names callers use (``from studyserver.survey import flow``; ``flow.X``).
"""

from __future__ import annotations

from .debrief import debrief_key, debrief_paragraphs, finish
from .entry import Declined, Entry, consent, enter, enter_with_consent, find_entry
from .exceptions import AlreadySubmitted, FlowError, StepNotAvailable
from .navigation import ALREADY_SAVED_NOTICE, LOCKED_NOTICE, Visit, visit
from .pages import PageAnswers, answers_for_page, submit_page
from .placement import (
    PostalOutcome,
    choose_district,
    district_choices,
    postal_code_given,
    reading_order,
    submit_postal_code,
)
from .records import record_page_served
from .steps import (
    CONSENT,
    DEBRIEF,
    DISTRICT,
    EXPOSURE_PAGES,
    FINISHED,
    POSTAL,
    SCREENED_OUT,
    TREATMENT,
    WITHDRAWN,
    all_steps,
    answers_locked,
    arm_of,
    next_step,
    progress,
    revisable,
    step_is_visible,
    steps_done,
    taking_part,
)
from .treatment import exposure_of, seconds_left, stimulus_shown, submit_treatment, treatment_served
from .withdrawal import withdraw

__all__ = [
    "ALREADY_SAVED_NOTICE", "CONSENT", "DEBRIEF", "DISTRICT", "EXPOSURE_PAGES", "FINISHED", "LOCKED_NOTICE", "POSTAL",
    "SCREENED_OUT", "TREATMENT", "WITHDRAWN", "AlreadySubmitted", "Declined", "Entry", "FlowError",
    "PageAnswers", "PostalOutcome", "StepNotAvailable", "Visit", "all_steps", "answers_for_page",
    "answers_locked", "arm_of", "choose_district", "consent", "debrief_key", "debrief_paragraphs",
    "district_choices", "enter", "enter_with_consent", "exposure_of", "find_entry", "finish",
    "next_step", "postal_code_given", "progress", "reading_order", "record_page_served",
    "revisable", "seconds_left", "step_is_visible", "steps_done", "stimulus_shown", "submit_page",
    "submit_postal_code", "submit_treatment", "taking_part", "treatment_served", "visit", "withdraw"
]
