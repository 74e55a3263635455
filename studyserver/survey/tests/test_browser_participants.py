"""A browser keeps its participants in a signed cookie: no session, nothing a browser can forge."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client

from studyserver.survey.sessions import COOKIE_NAME, KEPT, BrowserParticipants

from .conftest import YUKON, Respondent, make_study

pytestmark = pytest.mark.django_db


def test_taking_part_creates_no_session_and_the_cookie_is_kept_from_scripts_and_other_sites(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": YUKON})
    respondent.answer_page(respondent.current_step())
    assert not Session.objects.exists() and settings.SESSION_COOKIE_NAME not in respondent.client.cookies
    cookie = respondent.client.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
    assert bool(cookie["secure"]) == settings.SESSION_COOKIE_SECURE
    # Tokens and the study's participant only: never an answer or a postal code.
    held = signing.loads(cookie.value, salt="studyserver.survey.sessions.BrowserParticipants")
    assert set(held) == {"t", "r", "s", "n"} and YUKON not in str(held)
    assert held["t"] == [respondent.participant.token]


@pytest.mark.parametrize("tamper", ["edited", "unsigned", "garbage", "other-salt"])
def test_a_cookie_the_server_did_not_sign_holds_no_participant(yukon, tamper):
    owner = Respondent(make_study())
    owner.enter()
    owner.consent()
    token = owner.participant.token
    value = owner.client.cookies[COOKIE_NAME].value
    forged = {
        "edited": value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"),
        "unsigned": signing.b64_encode(f'{{"t":["{token}"]}}'.encode()).decode(),
        "garbage": "not a cookie at all",
        "other-salt": signing.dumps({"t": [token], "r": [], "s": {}, "n": None}, salt="elsewhere"),
    }[tamper]
    stranger = Client()
    stranger.cookies[COOKIE_NAME] = forged
    page = stranger.get(f"/take/{token}/postal/")
    assert page.status_code == 403 and "open the study with your own link" in page.content.decode()
    assert BrowserParticipants.from_cookie_value(forged) is None


def test_an_expired_cookie_holds_no_participant(settings):
    value = BrowserParticipants(tokens=["abc"]).as_cookie_value()
    assert BrowserParticipants.from_cookie_value(value).tokens == ["abc"]
    settings.SESSION_COOKIE_AGE = -1  # older than the session's age
    assert BrowserParticipants.from_cookie_value(value) is None


def test_malformed_contents_are_read_as_nothing_held():
    for data in (["t"], {"t": "abc", "r": 3, "s": ["x"], "n": 5}, None):
        held = BrowserParticipants.from_cookie_value(signing.dumps(data, salt="studyserver.survey.sessions.BrowserParticipants"))
        assert held is None or (held.tokens, held.resumed, held.studies, held.notice) == ([], [], {}, None)


def test_a_browser_keeps_its_latest_participants_and_one_per_study():
    held = BrowserParticipants()
    for number in range(KEPT + 5):
        held.bind(f"token-{number}", "flood", number)
    assert held.tokens == [f"token-{number}" for number in range(5, KEPT + 5)]
    assert held.studies == {"flood": str(KEPT + 4)} and held.resumed == []
    held.bind("taken-over", "other", 99, resumed_elsewhere=True)
    assert held.resumed_elsewhere("taken-over") and not held.resumed_elsewhere("token-6")
    held.forget_study("flood")
    assert held.participant_in("flood") is None and held.participant_in("other") == "99"
    restored = BrowserParticipants.from_cookie_value(held.as_cookie_value())
    assert (restored.tokens, restored.resumed, restored.studies) == (held.tokens, held.resumed, held.studies)


def test_a_notice_is_shown_on_the_next_page_only():
    held = BrowserParticipants()
    held.leave_notice("already_saved")
    restored = BrowserParticipants.from_cookie_value(held.as_cookie_value())
    assert restored.take_notice() == "already_saved" and restored.modified
    assert restored.take_notice() is None


def test_a_browser_that_started_before_the_cookie_goes_on_from_its_session(yukon):
    """Participants in the field when this release is deployed keep their browser's binding."""
    owner = Respondent(make_study())
    owner.enter()
    owner.consent()
    participant = owner.participant
    # The browser as the earlier release left it: its participants in a database session.
    session = SessionStore()
    session["floodlight_participants"] = [participant.token]
    session[f"study:{participant.study.slug}"] = str(participant.pk)
    session.create()
    earlier = Client()
    earlier.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    page = earlier.get(f"/take/{participant.token}/postal/")
    assert page.status_code == 200
    moved = BrowserParticipants.from_cookie_value(earlier.cookies[COOKIE_NAME].value)
    assert moved.tokens == [participant.token] and moved.participant_in(participant.study.slug) == str(participant.pk)
    # The entry link resumes the participant from the moved binding (not a second participant).
    again = Respondent(participant.study, client=earlier)
    assert again.enter()["Location"].endswith("/postal/")
    # A session without participants (a researcher's) binds nothing.
    researcher = SessionStore()
    researcher["_auth_user_id"] = "1"
    researcher.create()
    admin_browser = Client()
    admin_browser.cookies[settings.SESSION_COOKIE_NAME] = researcher.session_key
    assert admin_browser.get(f"/take/{participant.token}/postal/").status_code == 403
