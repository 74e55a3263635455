"""Shared fixtures: a small study with a treated, a control and a screened-out participant."""

from __future__ import annotations

import pytest

from studyserver.accounts.roles import DATA_MANAGER, PERSONAL_DATA
from tests.support.accounts import staff_with_roles

from .factories import make_district, make_participant, make_stimulus, make_study

SES = {"birth_year": 1980, "gender": 2, "education": 6, "income": 99, "employment": 1,
       "tenure": 1, "dwelling": 1, "urbanicity": 2, "years_in_district": 4, "home_language": 2}
POST = {"wtp_tax_buildings": 4, "wtp_tax_oil": 2, "info_emissions": 1, "info_floodprotect": 0}


@pytest.fixture
def study_with_people(db):
    study = make_study()
    district = make_district()
    stimulus = make_stimulus("house", district, backend="climategan", model_version="v1.2")
    treated = make_participant(
        study, arm="house", district=district, stimulus=stimulus, exposure_ms=12_345,
        image_delay_ms=345, pages={"consent": {"consent": 1}, "ses": SES, "wtp": POST},
        personal={"panel_id": "PANEL-1", "postal_code": "J9X 1A1", "email": "a@example.org",
                  "signature_name": "Ann Example", "panel_parameters": {"STUDY_ID": "S-1"}},
    )
    control = make_participant(study, arm="control", district=district, state="assigned",
                               pages={"ses": {**SES, "gender": 1}})
    screened = make_participant(study, state="screened_out", screenout_reason="not_canadian",
                                attention_passed=None)
    other_study = make_study("another")
    make_participant(other_study, arm="control", district=district)
    return study, treated, control, screened


@pytest.fixture
def staff(db):
    """A data manager: exports without personal data."""
    return staff_with_roles("staff", DATA_MANAGER)


@pytest.fixture
def privileged(db):
    """The personal data role: exports with personal data, withdrawal."""
    return staff_with_roles("privileged", PERSONAL_DATA)
