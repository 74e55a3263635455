"""A study on the real 2013 districts, approved images for it, and a participant-driving client."""

# answers_for and approve_images_for are re-exported for the other test modules.

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from studyserver.assignment.models import AllocationScheme
from studyserver.assignment.services import regenerate_stratum
from studyserver.geo.models import District
from studyserver.instrument.definition import get_instrument
from studyserver.studies.arms import ARMS
from studyserver.studies.models import Study
from studyserver.survey.answers import answers_for  # noqa: F401 (re-exported)
from studyserver.survey.models import Participant
from studyserver.survey.sessions import BrowserParticipants
from tests.support.browser import participants_in
from tests.support.treatments import approve_images_for  # noqa: F401 (re-exported)

# Postal codes of the real reference data (see studyserver/geo/tests/test_services.py).
YUKON = "Y1A 6E5"  # decided: Yukon (60001)
NORTHWEST_TERRITORIES = "X1A 2N4"  # decided: Northwest Territories (61001)
MONTREAL = "H2X 1Y4"  # spans several districts: the participant picks
NORTH_POLE = "H0H 0H0"  # well-formed, placed by GeoNames at the North Pole: screened out
UNKNOWN_FSA = "K0Z 1A1"  # well-formed, no such area: another try


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def make_study(first_arm: str | None = None, **fields: Any) -> Study:
    """A study on the 2013 districts. ``first_arm``: the first participant of the study draws it
    (a seeded, unstratified scheme whose sequence starts with that arm, found from the seed alone)."""
    defaults = {"slug": "flood", "title": "Flood test", "is_open": True, "representation_order": "2013",
                "min_exposure_seconds": 10}
    study = Study.objects.create(**{**defaults, **fields})
    if first_arm is not None:
        ratios = dict.fromkeys(ARMS, 1)
        seed = next(seed for seed in range(10_000)
                    if regenerate_stratum(seed, ratios, [1], "all", 1)[0][2] == first_arm)
        AllocationScheme.objects.create(study=study, seed=seed, block_multiples=[1],
                                        strata=AllocationScheme.Strata.NONE)
    return study


@pytest.fixture
def yukon(geo2013, media) -> District:
    district = District.objects.get(representation_order="2013", fed_code="60001")
    approve_images_for(district)
    return district


class Respondent:
    """One participant's browser: a Django test client that follows the study like a person would."""

    def __init__(self, study: Study, panel_id: str | None = "P-1", language: str = "en",
                 client: Client | None = None, parameters: Mapping[str, str] | None = None) -> None:
        self.study = study
        self.panel_id = panel_id
        self.parameters = dict(parameters or {})  # the panel's other entry-link parameters
        self.client = client or Client()
        self.language = language
        self.response = None

    @property
    def participant(self) -> Participant:
        return Participant.objects.get(token=self.token)

    @property
    def browser(self) -> BrowserParticipants:
        """What this respondent's browser holds of its participants (the signed cookie)."""
        return participants_in(self.client)

    @property
    def token(self) -> str:
        return self.browser.tokens[-1]

    def entry_url(self) -> str:
        query = {**self.parameters, "lang": self.language}
        if self.panel_id is not None:
            query[self.study.panel_id_parameter] = self.panel_id
            if self.study.require_signed_entry:
                query["sig"] = self.study.entry_signature(self.panel_id)
        return f"/s/{self.study.slug}/?{urlencode(query)}"

    def enter(self) -> Any:
        """Open the entry link: the consent page for a newcomer (nothing stored), else a redirect."""
        self.response = self.client.get(self.entry_url())
        return self.response

    def take_over(self) -> Any:
        """Open the entry link of a panel id started in another browser, and continue from there."""
        page = self.enter()
        assert page.status_code == 200 and 'name="resume" value="continue"' in page.content.decode()
        self.response = self.client.post(self.entry_url(), {"resume": "continue"})
        return self.response

    def url(self, step: str) -> str:
        if step == "consent" and not self.browser.tokens:
            return self.entry_url()  # a newcomer consents on the entry page itself
        return f"/take/{self.token}/{step}/"

    def get(self, step: str) -> Any:
        self.response = self.client.get(self.url(step))
        return self.response

    def post(self, step: str, data: Mapping[str, Any]) -> Any:
        self.response = self.client.post(self.url(step), data)
        return self.response

    def current_step(self) -> str:
        return self.participant.current_step

    def consent(self) -> Any:
        return self.post("consent", {"decision": "agree", "adult": "on"})

    def answer_page(self, key: str, overrides: Mapping[str, Any] | None = None) -> Any:
        participant = self.participant
        page = participant.instrument.page(key)  # the participant's own questionnaire version
        data = answers_for(page, participant.province_code, participant.answers(), overrides)
        return self.post(key, data)

    def answer_until(self, stop: Callable[[str], bool], overrides: Mapping[str, Any] | None = None) -> str:
        """Answer questionnaire pages with typical answers until ``stop(current_step)``."""
        for _ in range(30):
            step = self.current_step()
            if stop(step):
                return step
            response = self.answer_page(step, overrides)
            assert response.status_code == 302, (step, response.status_code, _errors(response))
        raise AssertionError("the flow did not reach the expected step")


def _errors(response: Any) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', response.content.decode())


PRE_PAGES = tuple(page.key for page in get_instrument().pages_in_phase("pre"))
