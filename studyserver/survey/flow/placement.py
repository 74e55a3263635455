"""Where the participant lives: the postal code, the district they pick when it does not decide,
corrections of either before assignment, and placement, which settles eligibility at once."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from studyserver.assignment import services as assignment
from studyserver.geo import services as geo
from studyserver.geo.models import District
from studyserver.instrument.definition import Instrument

from ..models import Participant, PersonalData
from .draw import finish_pre_treatment
from .eligibility import none_in_scope, screen_out, screen_out_ineligible
from .exceptions import StepNotAvailable
from .navigation import lock, revising
from .records import store_submission
from .steps import DEBRIEF, DISTRICT, POSTAL, all_steps, step_is_visible, steps_done

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostalOutcome:
    participant: Participant
    error: str | None = None  # an error code from geo.services (participant gets another try)


def submit_postal_code(participant: Participant, raw: str) -> PostalOutcome:
    instrument = participant.instrument
    study = participant.study
    location = geo.locate(raw, study.representation_order, fsa_area_threshold=study.fsa_area_threshold,
                          postal_code_threshold=study.postal_code_threshold)
    with transaction.atomic():
        participant = lock(participant)
        correcting = revising(participant, POSTAL, instrument)
        if not location.valid:
            return PostalOutcome(participant, error=location.error)
        if correcting:
            # A corrected postal code places the participant afresh (district, eligibility); the
            # submission's revision counts the correction, and the answers given since are kept.
            logger.info("participant %s corrects the postal code (was %s, district %s)", participant.pk,
                        participant.fsa, participant.district.fed_code if participant.district_id else "none")
            _unplace(participant)
        PersonalData.objects.update_or_create(participant=participant, defaults={"postal_code": location.normalized or ""})
        participant.fsa = location.fsa or ""
        participant.province_code = location.province_code or ""
        store_submission(participant, POSTAL, {"fsa": participant.fsa, "province_code": participant.province_code})
        if not location.placeable:
            screen_out(participant, Participant.ScreenOut.NOT_CANADIAN)
            return PostalOutcome(participant)
        if location.decided_fed_code:
            district = _district(participant, location.decided_fed_code)
            method = Participant.DistrictMethod.SNAPPED if location.snapped else Participant.DistrictMethod.CERTAIN
            _place(participant, district, method, candidates=[location.decided_fed_code])
        elif location.candidates:
            fed_codes = [c.fed_code for c in location.candidates]
            if none_in_scope(participant, fed_codes):
                # Whichever candidate they picked would screen them out: not asked to pick one.
                screen_out(participant, Participant.ScreenOut.OUT_OF_SCOPE, ", ".join(fed_codes))
                return PostalOutcome(participant)
            participant.district_candidates = {"mode": "candidates", "fed_codes": fed_codes}
            participant.current_step = DISTRICT
            participant.save()
        else:
            if none_in_scope(participant, None):
                screen_out(participant, Participant.ScreenOut.OUT_OF_SCOPE, participant.province_code)
                return PostalOutcome(participant)
            province = _province_districts(participant)
            if len(province) == 1:
                # A one-district territory: the postal code decides, there is nothing to ask.
                _place(participant, province[0], Participant.DistrictMethod.CERTAIN, candidates=[province[0].fed_code])
                return PostalOutcome(participant)
            participant.district_candidates = {"mode": "province", "fed_codes": []}
            participant.current_step = DISTRICT
            participant.save()
    return PostalOutcome(participant)


def postal_code_given(participant: Participant) -> str | None:
    """The postal code to show on its page: the one given when the participant is back to correct
    it (before assignment, see :func:`revisable`), None on a first visit."""
    if participant.current_step == POSTAL:
        return None
    personal = PersonalData.objects.filter(participant=participant).first()
    return personal.postal_code if personal is not None else None


def _province_districts(participant: Participant) -> list[Any]:
    return list(geo.districts_in_province(participant.province_code, participant.study.representation_order)[:2])


def reading_order(name: str) -> tuple[str, str]:
    """Sort key for names as people read them: accents and case do not move a name (É with E)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return plain.casefold(), name


def _district(participant: Participant, fed_code: str) -> District:
    return District.objects.get(representation_order=participant.study.representation_order, fed_code=fed_code)


def district_choices(participant: Participant) -> tuple[str, list[Any]]:
    """("candidates" | "province", the districts to offer)."""
    state = participant.district_candidates or {}
    if state.get("mode") == "candidates":
        order = {code: i for i, code in enumerate(state["fed_codes"])}
        districts = District.objects.filter(
            representation_order=participant.study.representation_order, fed_code__in=state["fed_codes"]
        )
        return "candidates", sorted(districts, key=lambda d: order[d.fed_code])
    return "province", list(geo.districts_in_province(participant.province_code, participant.study.representation_order))


def choose_district(participant: Participant, fed_code: str | None) -> Participant:
    """The participant picks a candidate, or "none of these" (→ the list of their province)."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = lock(participant)
        correcting = revising(participant, DISTRICT, instrument)
        mode, offered = district_choices(participant)
        if fed_code is None:
            if mode == "province":
                raise StepNotAvailable(DISTRICT)
            participant.district_candidates = {**participant.district_candidates, "mode": "province", "rejected": participant.district_candidates.get("fed_codes", [])}
            if correcting:
                # Their district is none of those offered after all: unplaced until they pick theirs.
                _unplace(participant)
                participant.current_step = DISTRICT
            participant.save()
            return participant
        if fed_code not in {d.fed_code for d in offered}:
            raise StepNotAvailable(DISTRICT)
        method = Participant.DistrictMethod.PICKED if mode == "candidates" else Participant.DistrictMethod.FALLBACK
        store_submission(participant, DISTRICT, {"fed_code": fed_code, "district_method": str(method)})
        _place(participant, _district(participant, fed_code), method, candidates=participant.district_candidates.get("fed_codes", []))
    return participant


def _unplace(participant: Participant) -> None:
    """Back to "consented, district unknown" (a correction of where they live, before assignment)."""
    participant.district = None
    participant.district_method = ""
    participant.state = Participant.State.CONSENTED


def _place(participant: Participant, district: District, method: str, candidates: list[str]) -> None:
    """Place the participant and settle eligibility at once, before any further question."""
    instrument = participant.instrument
    participant.district = district
    participant.district_method = method
    participant.placed_at = timezone.now()
    participant.state = Participant.State.PLACED
    participant.current_step = _first_unanswered_after_placement(participant, instrument)
    participant.save()
    eligibility = assignment.check_eligibility(participant)
    if not eligibility.eligible:
        screen_out_ineligible(participant, eligibility)
    elif instrument.pages_in_phase("pre") and \
            participant.current_step not in {p.key for p in instrument.pages_in_phase("pre")}:
        # A correction made the page they were on disappear (a question for another province),
        # and every other pre-treatment page is answered: on to the assignment.
        finish_pre_treatment(participant, instrument)


def _first_unanswered_after_placement(participant: Participant, instrument: Instrument) -> str:
    """The first page a newcomer is asked after placement; after a correction of where they live,
    the page they had reached (the answers given since are kept, and can still be corrected)."""
    steps = all_steps(instrument)
    done = steps_done(participant)
    answers = participant.answers()
    for step in steps[steps.index(DISTRICT) + 1:]:
        if step not in done and step_is_visible(participant, step, instrument, answers):
            return step
    return DEBRIEF
