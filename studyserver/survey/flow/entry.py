"""Entry and consent: who arrives (new, resumed, already done, declined before, over quota), and
the consent decision, which is when a participant is created."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from studyserver.studies.models import Study

from ..models import DeclinedEntry, Participant, PersonalData, panel_id_digest
from .navigation import check_current, lock
from .records import store_submission
from .steps import CONSENT, FINISHED, POSTAL


@dataclass(frozen=True)
class Entry:
    participant: Participant | None
    # "new", "resume", "already_done"; with no participant: "over_quota", "declined" (declined before)
    outcome: str


@dataclass(frozen=True)
class Declined:
    """What is left of a participant who declined: where to send them back (nothing is stored)."""

    exit_url: str


def find_entry(study: Study, panel_id: str | None, known_participant_id: str | None = None) -> Entry | None:
    """Who arrives, without creating anything: a participant to resume, one already done, or
    None for a newcomer (created only once they consent, see :func:`enter_with_consent`)."""
    if panel_id:
        digest = panel_id_digest(study.slug, panel_id)
        existing = Participant.objects.filter(study=study, panel_id_hash=digest).first()
        if existing is not None:
            return Entry(existing, "already_done" if _finished_for_good(existing) else "resume")
        if DeclinedEntry.objects.filter(study=study, panel_id_hash=digest).exists():
            return Entry(None, "declined")
    elif known_participant_id:
        existing = Participant.objects.filter(pk=known_participant_id, study=study).first()
        if existing is not None and not _finished_for_good(existing):
            return Entry(existing, "resume")
    if study.quota_reached():
        return Entry(None, "over_quota")
    return None


def enter(study: Study, panel_id: str | None, language: str, known_participant_id: str | None = None,
          panel_parameters: Mapping[str, str] | None = None) -> Entry:
    """A panel respondent arrives: start a new participant, resume theirs, or refuse a second attempt.

    ``panel_parameters`` are the study's kept entry-link parameters (stored as personal data).
    """
    found = find_entry(study, panel_id, known_participant_id)
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
                       known_participant_id: str | None = None,
                       panel_parameters: Mapping[str, str] | None = None) -> Entry | Declined:
    """The consent decision of a newcomer: agreeing creates the participant (consented, at the
    postal code page); declining creates nothing but an anonymous count and the keyed hash of the
    panel id (so that the same link goes straight back to the panel), and sends them back (Declined).

    Someone who arrived meanwhile under the same panel id (a second tab) is resumed instead.
    """
    if not agreed:
        found = find_entry(study, panel_id, known_participant_id)
        if found is not None:
            return found
        if panel_id:
            DeclinedEntry.objects.get_or_create(study=study, panel_id_hash=panel_id_digest(study.slug, panel_id))
        study.record_decline()
        return Declined(study.exit_url("declined", panel_id, panel_parameters))
    entry = enter(study, panel_id, language, known_participant_id, panel_parameters)
    if entry.outcome != "new":
        return entry
    return Entry(consent(entry.participant, True), "new")


def _finished_for_good(participant: Participant) -> bool:
    """Screened out, withdrawn, or completed and already sent back to the panel."""
    if participant.state == Participant.State.COMPLETED:
        return participant.current_step == FINISHED
    return participant.state in {Participant.State.SCREENED_OUT, Participant.State.WITHDRAWN}


def consent(participant: Participant, agreed: bool) -> Participant | Declined:
    """Record the consent decision. Declining deletes everything but an anonymous count (and the
    keyed hash of the panel id, so that the same link goes straight back to the panel)."""
    instrument = participant.instrument
    with transaction.atomic():
        participant = lock(participant)
        check_current(participant, CONSENT, instrument)
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
        store_submission(participant, CONSENT, {"consent": 1, "consent_version": participant.consent_version})
        participant.state = Participant.State.CONSENTED
        participant.consented_at = timezone.now()
        participant.current_step = POSTAL
        participant.save()
    return participant
