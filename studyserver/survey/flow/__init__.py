"""The participant flow as plain functions: which step comes next, and what each submission stores.

Views call these and render; every state change happens here, inside a transaction that locks the
participant's row, so a double submit, a reload or two tabs can never duplicate or lose an answer,
and the arm is drawn once (``assignment.services.assign`` is idempotent as a second guard).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from studyserver.instrument.definition import Instrument, Page, paragraphs
from studyserver.studies.models import Study

from .models import (
    DeclinedEntry,
    Exposure,
    InformationRequest,
    PageSubmission,
    PageView,
    Participant,
    PersonalData,
    panel_id_digest,
)
from .signals import participant_withdrawn

logger = logging.getLogger(__name__)

CONSENT, POSTAL, DISTRICT, TREATMENT, DEBRIEF = "consent", "postal", "district", "treatment", "debrief"
FINISHED, SCREENED_OUT = "finished", "screened_out"


class FlowError(Exception):
    """A request that does not fit the participant's position in the flow (nothing was changed)."""


class StepNotAvailable(FlowError):
    """A page ahead of the participant's current step (tampering or a stale link)."""


class AlreadySubmitted(FlowError):
    """A page already stored and locked (the back button or a double submit)."""


# --- the sequence of steps -------------------------------------------------------------------------


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


# --- navigation: which page a request for a step gets ------------------------------------------------

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


def answers_locked(participant: Participant) -> bool:
    """Whether the earlier answers can no longer change: once the arm is drawn (or the study is over)."""
    return participant.state not in {Participant.State.CONSENTED, Participant.State.PLACED}


# --- entry, consent ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    participant: Participant | None
    # "new", "resume", "already_done"; with no participant: "over_quota", "declined" (declined before)
    outcome: str


def find_entry(study: Study, panel_id: str | None, session_participant_id: str | None = None) -> Entry | None:
    """Who arrives, without creating anything: a participant to resume, one already done, or
    None for a newcomer (created only once they consent, see :func:`enter_with_consent`)."""
    if panel_id:
        digest = panel_id_digest(study.slug, panel_id)
        existing = Participant.objects.filter(study=study, panel_id_hash=digest).first()
        if existing is not None:
            return Entry(existing, "already_done" if _finished_for_good(existing) else "resume")
        if DeclinedEntry.objects.filter(study=study, panel_id_hash=digest).exists():
            return Entry(None, "declined")
    elif session_participant_id:
        existing = Participant.objects.filter(pk=session_participant_id, study=study).first()
        if existing is not None and not _finished_for_good(existing):
            return Entry(existing, "resume")
    if study.quota_reached():
        return Entry(None, "over_quota")
    return None


def enter(study: Study, panel_id: str | None, language: str, session_participant_id: str | None = None,
          panel_parameters: Mapping[str, str] | None = None) -> Entry:
    """A panel respondent arrives: start a new participant, resume theirs, or refuse a second attempt.

    ``panel_parameters`` are the study's kept entry-link parameters (stored as personal data).
    """
    found = find_entry(study, panel_id, session_participant_id)
    if found is not None:
        return found
    digest = panel_id_digest(study.slug, panel_id) if panel_id else None
    try:
        with transaction.atomic():
            participant = Participant.objects.create(
                study=study,
                panel_id_hash=digest,
                language=language,
            )  # takes the study's questionnaire version, kept from now on (Participant.save)
            PersonalData.objects.create(participant=participant, panel_id=panel_id or "",
                                        panel_parameters=dict(panel_parameters or {}))
    except IntegrityError:
        # The same panel id arrived twice at once (two tabs): the first one wins, the second resumes it.
        existing = Participant.objects.get(study=study, panel_id_hash=digest)
        return Entry(existing, "already_done" if _finished_for_good(existing) else "resume")
    return Entry(participant, "new")


def enter_with_consent(study: Study, panel_id: str | None, language: str, agreed: bool,
                       session_participant_id: str | None = None,
                       panel_parameters: Mapping[str, str] | None = None) -> Entry | Declined:
    """The consent decision of a newcomer: agreeing creates the participant (consented, at the
    postal code page); declining creates nothing but an anonymous count and the keyed hash of the
    panel id (so that the same link goes straight back to the panel), and sends them back (Declined).

    Someone who arrived meanwhile under the same panel id (a second tab) is resumed instead.
    """
    if not agreed:
        found = find_entry(study, panel_id, session_participant_id)
        if found is not None:
            return found
        if panel_id:
            DeclinedEntry.objects.get_or_create(study=study, panel_id_hash=panel_id_digest(study.slug, panel_id))
        study.record_decline()
        return Declined(study.exit_url("declined", panel_id, panel_parameters))
    entry = enter(study, panel_id, language, session_participant_id, panel_parameters)
    if entry.outcome != "new":
        return entry
    return Entry(consent(entry.participant, True), "new")


def _finished_for_good(participant: Participant) -> bool:
    """Screened out, withdrawn, or completed and already sent back to the panel."""
    if participant.state == Participant.State.COMPLETED:
        return participant.current_step == FINISHED
    return participant.state in {Participant.State.SCREENED_OUT, Participant.State.WITHDRAWN}


def record_page_served(participant: Participant, step: str) -> None:
    """First and last time the page was served, and how often (on every page GET).

    A serve again (a reload) is one ``UPDATE``; the first serve inserts the row with one upsert, so
    that a concurrent first serve (two tabs) cannot fail on the unique row: the later one then only
    moves ``last_served_at`` (an upsert sets values, it cannot add one to the count).
    """
    now = timezone.now()
    views = PageView.objects.filter(participant=participant, step=step)
    if views.update(last_served_at=now, times_served=F("times_served") + 1):
        return
    PageView.objects.bulk_create(
        [PageView(participant=participant, step=step, first_served_at=now, last_served_at=now)],
        update_conflicts=True, unique_fields=["participant", "step"], update_fields=["last_served_at"],
    )


def _lock(participant: Participant) -> Participant:
    return Participant.objects.select_for_update().get(pk=participant.pk)


def _revising(participant: Participant, step: str, instrument: Instrument) -> bool:
    """False for the current step, True for an earlier page being corrected (see :func:`revisable`);
    any other step raises (nothing is changed)."""
    if participant.current_step != step and step in steps_done(participant) and revisable(participant, step, instrument):
        return True
    _check_current(participant, step, instrument)
    return False


def _check_current(participant: Participant, step: str, instrument: Instrument) -> None:
    if participant.current_step == step:
        return
    if step in steps_done(participant) or all_steps(instrument).index(step) < all_steps(instrument).index(participant.current_step):
        raise AlreadySubmitted(step)
    raise StepNotAvailable(step)


def _store_submission(participant: Participant, step: str, answers: Mapping[str, Any]) -> PageSubmission:
    now = timezone.now()
    view = PageView.objects.filter(participant=participant, step=step).first()
    served_at: datetime = view.last_served_at if view else now
    submission, created = PageSubmission.objects.get_or_create(
        participant=participant,
        step=step,
        defaults={"answers": dict(answers), "served_at": served_at, "submitted_at": now,
                  "seconds_on_page": max((now - served_at).total_seconds(), 0.0)},
    )
    if not created:
        submission.answers = dict(answers)
        submission.served_at = served_at
        submission.submitted_at = now
        submission.seconds_on_page = max((now - served_at).total_seconds(), 0.0)
        submission.revision += 1
        submission.save()
    return submission


@dataclass(frozen=True)
class Declined:
    """What is left of a participant who declined: where to send them back (nothing is stored)."""

    exit_url: str


def consent(participant: Participant, agreed: bool) -> Participant | Declined:
    """Record the consent decision. Declining deletes everything but an anonymous count (and the
    keyed hash of the panel id, so that the same link goes straight back to the panel)."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = _lock(participant)
        _check_current(participant, CONSENT, instrument)
        if not agreed:
            study = participant.study
            personal = PersonalData.objects.filter(participant=participant).first()
            exit_url = study.exit_url("declined", personal.panel_id if personal else "",
                                      personal.panel_parameters if personal else {})
            if participant.panel_id_hash:
                DeclinedEntry.objects.get_or_create(study=study, panel_id_hash=participant.panel_id_hash)
            participant.delete()
            study.record_decline()
            return Declined(exit_url)
        # Recorded when agreed to, not at entry: a row that never consented carries no version.
        participant.consent_version = participant.questionnaire.consent_version if participant.questionnaire_id \
            else participant.study.consent_version
        _store_submission(participant, CONSENT, {"consent": 1, "consent_version": participant.consent_version})
        participant.state = Participant.State.CONSENTED
        participant.consented_at = timezone.now()
        participant.current_step = POSTAL
        participant.save()
    return participant


# --- postal code and district --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostalOutcome:
    participant: Participant
    error: str | None = None  # an error code from geo.services (participant gets another try)


def submit_postal_code(participant: Participant, raw: str) -> PostalOutcome:
    from studyserver.geo import services as geo

    instrument = participant.instrument
    study = participant.study
    location = geo.locate(raw, study.representation_order, fsa_area_threshold=study.fsa_area_threshold,
                          postal_code_threshold=study.postal_code_threshold)
    with transaction.atomic():
        participant = _lock(participant)
        revising = _revising(participant, POSTAL, instrument)
        if not location.valid:
            return PostalOutcome(participant, error=location.error)
        if revising:
            # A corrected postal code places the participant afresh (district, eligibility); the
            # submission's revision counts the correction, and the answers given since are kept.
            logger.info("participant %s corrects the postal code (was %s, district %s)", participant.pk,
                        participant.fsa, participant.district.fed_code if participant.district_id else "none")
            _unplace(participant)
        PersonalData.objects.update_or_create(participant=participant, defaults={"postal_code": location.normalized or ""})
        participant.fsa = location.fsa or ""
        participant.province_code = location.province_code or ""
        _store_submission(participant, POSTAL, {"fsa": participant.fsa, "province_code": participant.province_code})
        if not location.placeable:
            _screen_out(participant, Participant.ScreenOut.NOT_CANADIAN)
            return PostalOutcome(participant)
        if location.decided_fed_code:
            district = _district(participant, location.decided_fed_code)
            method = Participant.DistrictMethod.SNAPPED if location.snapped else Participant.DistrictMethod.CERTAIN
            _place(participant, district, method, candidates=[location.decided_fed_code])
        elif location.candidates:
            fed_codes = [c.fed_code for c in location.candidates]
            if _none_in_scope(participant, fed_codes):
                # Whichever candidate they picked would screen them out: not asked to pick one.
                _screen_out(participant, Participant.ScreenOut.OUT_OF_SCOPE, ", ".join(fed_codes))
                return PostalOutcome(participant)
            participant.district_candidates = {"mode": "candidates", "fed_codes": fed_codes}
            participant.current_step = DISTRICT
            participant.save()
        else:
            if _none_in_scope(participant, None):
                _screen_out(participant, Participant.ScreenOut.OUT_OF_SCOPE, participant.province_code)
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


def _none_in_scope(participant: Participant, fed_codes: list[str] | None) -> bool:
    """Whether none of ``fed_codes`` (None: no district of the participant's province) is in the study's scope."""
    study = participant.study
    if study.scope == Study.Scope.ALL:
        return False
    districts = study.districts_in_scope()
    if fed_codes is None:
        return not districts.filter(province_code=participant.province_code).exists()
    return not districts.filter(fed_code__in=fed_codes).exists()


def _province_districts(participant: Participant) -> list[Any]:
    from studyserver.geo import services as geo

    return list(geo.districts_in_province(participant.province_code, participant.study.representation_order)[:2])


def reading_order(name: str) -> tuple[str, str]:
    """Sort key for names as people read them: accents and case do not move a name (É with E)."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return plain.casefold(), name


def _district(participant: Participant, fed_code: str):
    from studyserver.geo.models import District

    return District.objects.get(representation_order=participant.study.representation_order, fed_code=fed_code)


def district_choices(participant: Participant) -> tuple[str, list[Any]]:
    """("candidates" | "province", the districts to offer)."""
    from studyserver.geo import services as geo
    from studyserver.geo.models import District

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
        participant = _lock(participant)
        revising = _revising(participant, DISTRICT, instrument)
        mode, offered = district_choices(participant)
        if fed_code is None:
            if mode == "province":
                raise StepNotAvailable(DISTRICT)
            participant.district_candidates = {**participant.district_candidates, "mode": "province", "rejected": participant.district_candidates.get("fed_codes", [])}
            if revising:
                # Their district is none of those offered after all: unplaced until they pick theirs.
                _unplace(participant)
                participant.current_step = DISTRICT
            participant.save()
            return participant
        if fed_code not in {d.fed_code for d in offered}:
            raise StepNotAvailable(DISTRICT)
        method = Participant.DistrictMethod.PICKED if mode == "candidates" else Participant.DistrictMethod.FALLBACK
        _store_submission(participant, DISTRICT, {"fed_code": fed_code, "district_method": str(method)})
        _place(participant, _district(participant, fed_code), method, candidates=participant.district_candidates.get("fed_codes", []))
    return participant


def _unplace(participant: Participant) -> None:
    """Back to "consented, district unknown" (a correction of where they live, before assignment)."""
    participant.district = None
    participant.district_method = ""
    participant.state = Participant.State.CONSENTED


def _place(participant: Participant, district, method: str, candidates: list[str]) -> None:
    """Place the participant and settle eligibility at once, before any further question."""
    from studyserver.assignment import services as assignment

    instrument = participant.instrument
    participant.district = district
    participant.district_method = method
    participant.placed_at = timezone.now()
    participant.state = Participant.State.PLACED
    participant.current_step = _first_unanswered_after_placement(participant, instrument)
    participant.save()
    eligibility = assignment.check_eligibility(participant)
    if not eligibility.eligible:
        _screen_out_ineligible(participant, eligibility)
    elif instrument.pages_in_phase("pre") and \
            participant.current_step not in {p.key for p in instrument.pages_in_phase("pre")}:
        # A correction made the page they were on disappear (a question for another province),
        # and every other pre-treatment page is answered: on to the assignment.
        _finish_pre_treatment(participant, instrument)


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


def _screen_out_ineligible(participant: Participant, eligibility: Any) -> None:
    reason = {"out_of_scope": Participant.ScreenOut.OUT_OF_SCOPE,
              "material_missing": Participant.ScreenOut.MATERIAL_MISSING}.get(eligibility.reason,
                                                                             Participant.ScreenOut.INELIGIBLE)
    detail = ", ".join(eligibility.missing_arms) if eligibility.missing_arms else (
        participant.district.fed_code if participant.district_id else eligibility.reason)
    logger.warning("participant %s ineligible: %s (%s)", participant.pk, eligibility.reason, detail)
    _screen_out(participant, reason, detail)


# --- questionnaire pages, assignment ---------------------------------------------------------------------


def submit_page(participant: Participant, page: Page, answers: Mapping[str, Any], personal: Mapping[str, str]) -> Participant:
    """Store one questionnaire page; the last pre-treatment page settles eligibility and draws the arm."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = _lock(participant)
        editing = participant.current_step != page.key and revisable(participant, page.key, instrument) and page.key in steps_done(participant)
        if not editing:
            _check_current(participant, page.key, instrument)
        _store_submission(participant, page.key, answers)
        if personal:
            PersonalData.objects.update_or_create(participant=participant, defaults=dict(personal))
        if editing:
            return participant
        after = next_step(participant, page.key, instrument)
        if page.phase == "pre" and after not in {p.key for p in instrument.pages_in_phase("pre")}:
            return _finish_pre_treatment(participant, instrument)
        if page.key == "info_email":
            _queue_information_emails(participant, instrument)
        participant.current_step = after
        if after == DEBRIEF:
            participant.state = Participant.State.COMPLETED
            participant.completed_at = timezone.now()
        participant.save()
    return participant


def _finish_pre_treatment(participant: Participant, instrument: Instrument) -> Participant:
    from studyserver.assignment import services as assignment

    answers = participant.answers()
    checks = instrument.attention_items
    if checks:
        participant.attention_passed = all(answers.get(item.code) == item.attention_correct for item in checks)
    participant.save()
    # Settled at placement already; checked again because an image may have been withdrawn since.
    eligibility = assignment.check_eligibility(participant)
    if not eligibility.eligible:
        _screen_out_ineligible(participant, eligibility)
        return participant
    if participant.study.assignment_quota is not None:
        # The study row is locked so that the last places of the quota go to exactly that many people.
        study = Study.objects.select_for_update().get(pk=participant.study_id)
        if study.quota_reached():
            _screen_out(participant, Participant.ScreenOut.OVER_QUOTA)
            return participant
    assignment.assign(participant)
    participant.refresh_from_db()
    participant.current_step = next_step(participant, instrument.pages_in_phase("pre")[-1].key, instrument)
    participant.save()
    return participant


def _screen_out(participant: Participant, reason: str, detail: str = "") -> None:
    participant.state = Participant.State.SCREENED_OUT
    participant.screenout_reason = reason
    participant.screenout_detail = detail[:200]
    participant.screened_out_at = timezone.now()
    participant.current_step = SCREENED_OUT
    participant.save()


def _queue_information_emails(participant: Participant, instrument: Instrument) -> None:
    from .tasks import queue_information_email

    answers = participant.answers()
    for topic in instrument.information_emails:
        if answers.get(topic) == 1:
            request, created = InformationRequest.objects.get_or_create(participant=participant, topic=topic)
            if created:
                transaction.on_commit(lambda pk=request.pk: queue_information_email(pk))


# --- treatment ---------------------------------------------------------------------------------------------


def exposure_of(participant: Participant) -> Exposure | None:
    """The participant's exposure: no query when the page's participant query read it already."""
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
    from studyserver.treatments.models import Stimulus
    from studyserver.treatments.services import stimulus_for

    exposure = exposure or exposure_of(participant)
    if exposure is not None and exposure.stimulus_id:
        # Only while it is approved: a researcher who withdraws an image withdraws it from everyone.
        return (Stimulus.objects.select_related("source")
                .filter(public_id=exposure.stimulus_id, status=Stimulus.Status.APPROVED).first())
    return stimulus_for(arm_of(participant), participant.district, study=participant.study)


def treatment_served(participant: Participant, stimulus_id: str, exposure: Exposure | None = None) -> Exposure:
    """The first time the page is served starts the exposure clock; reloads do not restart it."""
    if exposure is not None:
        return exposure
    # Known to be missing a moment ago: one upsert (not get_or_create's second read, transaction and
    # savepoint). On a concurrent first serve (two tabs) the row stored first is kept as it is (the
    # conflict "updates" the participant to itself); this object's clock is then a moment later.
    created = Exposure(participant=participant, page_served_at=timezone.now(), stimulus_id=stimulus_id)
    Exposure.objects.bulk_create([created], update_conflicts=True, unique_fields=["participant"],
                                 update_fields=["participant"])
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
        participant = _lock(participant)
        _check_current(participant, TREATMENT, instrument)
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
        _store_submission(participant, TREATMENT, {})
        participant.state = Participant.State.EXPOSED
        participant.exposed_at = now
        participant.current_step = next_step(participant, TREATMENT, instrument)
        participant.save()
    return participant, True


def debrief_key(arm: str | None, stimulus: Any = None) -> str:
    """The instrument text telling a participant of ``arm`` what they saw.

    The distant arm's photo is shown as is (a real photograph); should a stimulus of that arm have
    been generated, or be one of the demo's simulated-world pictures (shown as is, but made by a
    computer), it is described as generated: the text follows what was actually shown.
    """
    from studyserver.treatments.models import PHOTO_BACKEND

    if arm in {None, "control"}:
        return "debrief_arm_control"
    real_photo = stimulus is None or (stimulus.backend == PHOTO_BACKEND and not stimulus.source.is_demo)
    if arm == "distant" and real_photo:
        return "debrief_arm_distant"
    return "debrief_arm_generated"


def debrief_paragraphs(participant: Participant, language: str, instrument: Instrument | None = None) -> list[str]:
    """The debrief for this participant's arm, then the common part (purpose, resources)."""
    from studyserver.treatments.models import Stimulus

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
        participant = _lock(participant)
        if participant.state != Participant.State.COMPLETED:
            raise StepNotAvailable(DEBRIEF)
        participant.current_step = FINISHED
        participant.save(update_fields=["current_step", "last_seen_at"])
    return participant


# --- withdrawal -------------------------------------------------------------------------------------------


def withdraw(participant: Participant) -> None:
    """Delete the participant's answers and personal data; keep only the drawn slot (append-only)."""
    with transaction.atomic():
        participant = _lock(participant)
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
        participant.current_step = "withdrawn"
        participant.save()
