"""Screening out: who cannot take part (outside the study's scope, an arm without its image, the
quota reached, not in Canada), settled as soon as it is known and before any further question."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from studyserver.studies.models import Study

from ..models import Participant
from .steps import SCREENED_OUT

logger = logging.getLogger(__name__)


def screen_out(participant: Participant, reason: str, detail: str = "") -> None:
    participant.state = Participant.State.SCREENED_OUT
    participant.screenout_reason = reason
    participant.screenout_detail = detail[:200]
    participant.screened_out_at = timezone.now()
    participant.current_step = SCREENED_OUT
    participant.save()


def screen_out_ineligible(participant: Participant, eligibility: Any) -> None:
    """Screen out for the reason ``assignment.services.check_eligibility`` gave."""
    reason = {"out_of_scope": Participant.ScreenOut.OUT_OF_SCOPE,
              "material_missing": Participant.ScreenOut.MATERIAL_MISSING}.get(eligibility.reason,
                                                                             Participant.ScreenOut.INELIGIBLE)
    detail = ", ".join(eligibility.missing_arms) if eligibility.missing_arms else (
        participant.district.fed_code if participant.district_id else eligibility.reason)
    logger.warning("participant %s ineligible: %s (%s)", participant.pk, eligibility.reason, detail)
    screen_out(participant, reason, detail)


def none_in_scope(participant: Participant, fed_codes: list[str] | None) -> bool:
    """Whether none of ``fed_codes`` (None: no district of the participant's province) is in the study's scope."""
    study = participant.study
    if study.scope == Study.Scope.ALL:
        return False
    districts = study.districts_in_scope()
    if fed_codes is None:
        return not districts.filter(province_code=participant.province_code).exists()
    return not districts.filter(fed_code__in=fed_codes).exists()
