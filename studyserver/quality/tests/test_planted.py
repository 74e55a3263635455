"""Simulated respondents with planted speeders, straight-liners, duplicates and bots, through the
real pages: the planted ones are flagged, the normal ones are not, and nobody is told or stopped."""

from __future__ import annotations

import pytest

from studyserver.quality.services import assess_study
from studyserver.survey.models import Participant
from studyserver.survey.simulation import simulate_respondents
from studyserver.survey.tests.conftest import make_study

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXPECTED = {"speeder": "speeding", "straight_liner": "straight_lining", "duplicate": "duplicate_taker",
            "bot": "honeypot"}


def test_planted_respondents_are_flagged_and_normal_ones_are_not(yukon):
    study = make_study(demo=True, scope="provinces", scope_provinces="YT", exclusion_flags=list(EXPECTED.values()))
    plant = dict.fromkeys(EXPECTED, 0.1)
    states = simulate_respondents(study, 60, seed=11, plant=plant)
    assert states == {"completed": 60}  # nobody stopped, screened out or sent elsewhere for a flag
    assert not Participant.objects.filter(study=study).exclude(current_step="finished").exists()
    flags = assess_study(study)
    kinds: dict[str, list[list[str]]] = {}
    for pk, panel_id in Participant.objects.filter(study=study).values_list("pk", "personal_data__panel_id"):
        kind = panel_id.split("-", 2)[2] if panel_id.count("-") == 2 else "normal"
        kinds.setdefault(kind, []).append(flags[str(pk)])
    assert set(kinds) == {"normal", *EXPECTED} and len(kinds["normal"]) >= 30
    for kind, flag in EXPECTED.items():
        caught = sum(flag in raised for raised in kinds[kind])
        assert caught >= 0.95 * len(kinds[kind]), (kind, kinds[kind])
    assert all("too_fast" in raised for raised in kinds["bot"])
    false_alarms = sum(bool(raised) for raised in kinds["normal"])
    assert false_alarms <= 0.02 * len(kinds["normal"]), kinds["normal"]
