"""The raw signals survey records as the participant goes, and the flags built on them: nobody is
told or stopped, the honeypot stays out of sight, addresses are never stored."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from studyserver.quality.models import ParticipantQuality
from studyserver.quality.services import assess_study
from studyserver.survey.models import Participant
from studyserver.survey.tests.conftest import YUKON, Respondent, make_study
from studyserver.survey.traces import BROWSER_COOKIE, HONEYPOT_FIELD, network_digest

pytestmark = pytest.mark.django_db
# Public addresses: only those are hashed (203.0.113.0/24 and other documentation ranges are not).
ADDRESS, AGENT = "23.19.7.7", "Mozilla/5.0 (test)"


def _placed(study, panel_id: str, client: Client | None = None) -> Respondent:
    respondent = Respondent(study, panel_id=panel_id, client=client or Client(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=AGENT))
    respondent.enter()
    # Consent posts back to the entry link (as the page's form does), whatever the browser did before.
    assert respondent.client.post(respondent.entry_url(), {"decision": "agree", "adult": "on"}).status_code == 302
    assert respondent.post("postal", {"postal_code": YUKON}).status_code == 302
    return respondent


def test_the_honeypot_is_hidden_from_people_screen_readers_and_the_keyboard(yukon):
    respondent = _placed(make_study(), "P-1")
    page = respondent.get(respondent.current_step()).content.decode()
    trap = re.search(r'<div class="hp-field" hidden aria-hidden="true">.*?</div>', page, re.S)
    assert trap is not None
    assert f'name="{HONEYPOT_FIELD}"' in trap.group(0) and 'tabindex="-1"' in trap.group(0)
    assert 'autocomplete="off"' in trap.group(0) and 'value=""' in trap.group(0)
    css = (settings.BASE_DIR / "templates" / "static" / "floodlight.css").read_text(encoding="utf-8")
    # Not rendered at all (off-screen is not enough: browsers' form fillers fill what is laid out).
    assert re.search(r"\.hp-field \{[^}]*display: none", css)


def test_a_filled_honeypot_is_recorded_and_the_participant_goes_on_untold(yukon):
    respondent = _placed(make_study(), "P-1")
    step = respondent.current_step()
    participant = respondent.participant
    from studyserver.survey.answers import answers_for

    data = answers_for(participant.instrument.page(step), participant.province_code, {})
    response = respondent.post(step, {**data, HONEYPOT_FIELD: "http://spam.example"})
    assert response.status_code == 302 and respondent.current_step() != step  # saved, moved on
    assert Participant.objects.get(pk=participant.pk).honeypot_step == step
    assert assess_study(respondent.study)[str(participant.pk)] == ["honeypot"]


def test_the_browser_cookie_and_keyed_network_hash_find_a_second_panel_id(yukon):
    study = make_study()
    first = _placed(study, "P-1")
    assert first.client.cookies[BROWSER_COOKIE].value == first.participant.browser_id
    cookie = first.client.cookies[BROWSER_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    people = {"P-1": first.participant}
    # The same browser under another panel id (its session names the newest participant).
    people["P-2"] = _placed(study, "P-2", client=first.client).participant
    people["P-3"] = _placed(study, "P-3").participant  # a fresh browser (no cookie), same address and agent
    people["P-4"] = _placed(study, "P-4", client=Client(REMOTE_ADDR="23.19.7.9", HTTP_USER_AGENT=AGENT)).participant
    assert people["P-2"].browser_id == people["P-1"].browser_id != people["P-3"].browser_id
    assert people["P-3"].network_hash == people["P-1"].network_hash != people["P-4"].network_hash != ""
    stored = Participant.objects.filter(study=study).values_list("browser_id", "network_hash")
    assert not any(ADDRESS in value for row in stored for value in row)  # the address itself is nowhere
    flags = assess_study(study)
    assert [flags[str(people[p].pk)] for p in ("P-1", "P-2", "P-3", "P-4")] == [[], ["duplicate_taker"],
                                                                                 ["duplicate_taker"], []]


def test_flags_are_recorded_when_a_participant_completes(yukon, django_capture_on_commit_callbacks):
    respondent = _placed(make_study(first_arm="control"), "P-1")
    with django_capture_on_commit_callbacks(execute=True):
        respondent.answer_until(lambda step: step == "debrief")
    record = ParticipantQuality.objects.get(participant=respondent.participant)
    # Typical test answers take the first option of every item (a straight line on the values page),
    # and a test client answers every page within milliseconds.
    assert record.flags == "straight_lining;too_fast"
    assert respondent.post("debrief", {}).status_code == 302  # and is sent back to the panel all the same


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.4", "172.16.5.5", "::1",
                                     "fd00::1", "203.0.113.7", "", "not-an-address"])
def test_only_a_public_address_is_hashed(address):
    # A loopback, private or reserved address is shared by everyone behind it (the study's own
    # network, a proxy count set too low): hashing it would make every participant a duplicate.
    assert network_digest("flood", address, AGENT) == ""
    public = network_digest("flood", "23.19.7.7", AGENT)
    assert len(public) == 64 and public != network_digest("flood", "23.19.7.9", AGENT)
    assert network_digest("flood", "2600:1f18::1", AGENT) != ""
