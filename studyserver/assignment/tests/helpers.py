"""Builders for the assignment tests: unique slugs (the suite runs under xdist), placed participants."""

from __future__ import annotations

import uuid
from typing import Any

from studyserver.assignment.models import AllocationScheme
from studyserver.geo.models import District
from studyserver.studies.models import Study
from studyserver.survey.models import PageSubmission, Participant


def make_study(prefix: str = "assign", **scheme_fields: Any) -> Study:
    study = Study.objects.create(slug=f"{prefix}-{uuid.uuid4().hex[:10]}", title="Assignment test")
    if scheme_fields:
        AllocationScheme.objects.create(study=study, **scheme_fields)
    return study


def make_district(province: str = "QC") -> District:
    return District.objects.create(
        representation_order="2023",
        fed_code=str(uuid.uuid4().int % 90000 + 10000),
        name_en="Test district",
        name_fr="Circonscription test",
        province_code=province,
    )


def make_participants(
    study: Study, n: int, province: str = "QC", district: District | None = None
) -> list[Participant]:
    rows = [
        Participant(
            study=study, state=Participant.State.PLACED, province_code=province, district=district
        )
        for _ in range(n)
    ]
    return Participant.objects.bulk_create(rows)


def answer(participant: Participant, step: str, answers: dict[str, Any]) -> None:
    from django.utils import timezone

    now = timezone.now()
    PageSubmission.objects.create(
        participant=participant,
        step=step,
        answers=answers,
        served_at=now,
        submitted_at=now,
        seconds_on_page=1.0,
    )


def no_missing_material(study: Any, district: Any) -> list[str]:
    return []
