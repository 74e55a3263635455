"""Participants made directly through the models (not the flow views), for export tests and the
export benchmark. Timestamps are fixed so expected values can be computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from studyserver.assignment.models import AllocationScheme, AllocationSlot, Assignment
from studyserver.geo.models import District
from studyserver.studies.models import Study
from studyserver.survey.models import Exposure, PageSubmission, Participant, PersonalData
from studyserver.treatments.models import SourcePhoto, Stimulus

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


def make_study(slug: str = "flood-test", **fields: Any) -> Study:
    return Study.objects.create(slug=slug, title=fields.pop("title", slug.title()), **fields)


def make_district(fed_code: str = "24001", province_code: str = "QC",
                  name_en: str = "Abitibi—Témiscamingue", order: str = "2023") -> District:
    return District.objects.create(
        representation_order=order, fed_code=fed_code, name_en=name_en, name_fr=name_en + " (fr)",
        province_code=province_code,
    )


def make_stimulus(kind: str = "house", district: District | None = None, province_code: str = "",
                  backend: str = "reference", model_version: str = "sim-1") -> Stimulus:
    source = SourcePhoto.objects.create(
        kind=kind, district=district, province_code=province_code, place_name_en="Somewhere",
        place_name_fr="Quelque part", image="treatments/sources/x.png",
    )
    return Stimulus.objects.create(source=source, status=Stimulus.Status.APPROVED, backend=backend,
                                   model_version=model_version)


def assign_directly(participant: Participant, arm: str, stratum: str | None = None) -> Assignment:
    """Record a draw without the allocation algorithm, so tests choose the arm."""
    scheme, _ = AllocationScheme.objects.get_or_create(study=participant.study)
    stratum = stratum or participant.province_code or "unknown"
    position = AllocationSlot.objects.filter(scheme=scheme, stratum=stratum).count() + 1
    slot = AllocationSlot.objects.create(
        scheme=scheme, stratum=stratum, position=position, block_number=(position - 1) // 5 + 1,
        block_size=5, position_in_block=(position - 1) % 5 + 1, arm=arm,
    )
    return Assignment.objects.create(participant=participant, study=participant.study, slot=slot,
                                     arm=arm, stratum=stratum, sequence_position=position)


def make_participant(study: Study, *, state: str = "completed", arm: str | None = None,
                     district: District | None = None, pages: dict[str, dict] | None = None,
                     seconds: float = 20.0, stimulus: Stimulus | None = None,
                     exposure_ms: int | None = None, image_delay_ms: int | None = None,
                     personal: dict[str, str] | None = None, screenout_reason: str = "",
                     language: str = "en", attention_passed: bool | None = True) -> Participant:
    """A participant with page submissions ``pages`` ({step: answers}) in the given order."""
    participant = Participant.objects.create(
        study=study, state=state, screenout_reason=screenout_reason, language=language,
        consent_version="1.0", instrument_version="floodlight-v1",
        fsa="J9X" if district else "", province_code=district.province_code if district else "",
        district=district, district_method="certain" if district else "",
        attention_passed=attention_passed, consented_at=T0 + timedelta(seconds=30),
        completed_at=(T0 + timedelta(minutes=12)) if state == "completed" else None,
    )
    for position, (step, answers) in enumerate((pages or {}).items()):
        served = T0 + timedelta(minutes=position)
        PageSubmission.objects.create(
            participant=participant, step=step, answers=answers, served_at=served,
            submitted_at=served + timedelta(seconds=seconds), seconds_on_page=seconds,
        )
    if arm is not None:
        assign_directly(participant, arm)
    if exposure_ms is not None:
        served = T0 + timedelta(minutes=6)
        Exposure.objects.create(
            participant=participant, stimulus_id=stimulus.public_id if stimulus else "",
            page_served_at=served,
            image_loaded_at=served + timedelta(milliseconds=image_delay_ms)
            if image_delay_ms is not None else None,
            submitted_at=served + timedelta(milliseconds=exposure_ms),
        )
        Participant.objects.filter(pk=participant.pk).update(
            exposed_at=served + timedelta(milliseconds=exposure_ms)
        )
    if personal is not None:
        PersonalData.objects.create(participant=participant, **personal)
    return participant
