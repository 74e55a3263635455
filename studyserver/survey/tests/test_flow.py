"""The participant's journey through the real views, database and geocoding, step by step."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from studyserver.assignment.models import Assignment
from studyserver.geo.models import District
from studyserver.studies.models import Study
from studyserver.survey import flow
from studyserver.survey.models import (
    Exposure,
    InformationRequest,
    PageSubmission,
    PageView,
    Participant,
    PersonalData,
)

from .conftest import (
    MONTREAL,
    NORTH_POLE,
    PRE_PAGES,
    UNKNOWN_FSA,
    YUKON,
    Respondent,
    _errors,
    approve_images_for,
    make_study,
)

pytestmark = pytest.mark.django_db


def placed_in_yukon(study: Study, **kwargs) -> Respondent:
    respondent = Respondent(study, **kwargs)
    assert respondent.enter().status_code == 200  # the consent page
    assert respondent.consent().status_code == 302
    assert respondent.post("postal", {"postal_code": YUKON}).status_code == 302
    return respondent


# --- entry and consent -------------------------------------------------------------------------------


def test_entry_shows_consent_and_stores_nothing_until_the_participant_agrees(yukon):
    study = make_study()
    respondent = Respondent(study, panel_id="PANEL-42")
    for _ in range(3):  # a crawler or a link preview opening the link leaves no trace
        page = respondent.enter()
        assert page.status_code == 200 and "12 minutes" in page.content.decode()
    assert not Participant.objects.exists() and not PersonalData.objects.exists()
    assert not Session.objects.exists()  # not even a session row
    response = respondent.consent()
    assert response.status_code == 302 and response["Location"].endswith("/postal/")
    participant = respondent.participant
    assert participant.consent_version == study.consent_version and participant.consented_at
    assert participant.panel_id_hash and "PANEL-42" not in participant.panel_id_hash
    assert PersonalData.objects.get(participant=participant).panel_id == "PANEL-42"
    assert PageSubmission.objects.get(participant=participant, step="consent").answers["consent"] == 1
    # The same browser opening the link again continues; nothing is created twice.
    assert respondent.enter()["Location"].endswith("/postal/")
    assert Participant.objects.count() == 1


def test_declining_keeps_only_an_anonymous_count(yukon):
    study = make_study()
    respondent = Respondent(study)
    respondent.enter()
    response = respondent.post("consent", {"decision": "decline"})
    assert response.status_code == 200 and "Nothing you entered has been kept" in response.content.decode()
    # The panel gets a status: the page's button is the declined exit with the respondent id.
    assert 'href="/done/declined/?pid=P-1"' in response.content.decode()
    assert "Return to the panel" in response.content.decode()
    assert not Participant.objects.exists() and not PersonalData.objects.exists()
    study.refresh_from_db()
    assert study.declined_count == 1
    # The same link again: straight back to the panel, no new "started" participant.
    again = Respondent(study).enter()
    assert again.status_code == 302 and again["Location"] == "/done/declined/?pid=P-1"
    assert not Participant.objects.exists() and study.declined_count == 1


def test_declined_exit_uses_the_study_template_and_kept_parameters(yukon):
    study = make_study(panel_id_parameter="PROLIFIC_PID", panel_parameters="STUDY_ID, SESSION_ID",
                       declined_url_template="https://app.prolific.com/submissions/complete?cc=NOCONSENT&p={pid}")
    respondent = Respondent(study, panel_id="abc 1", parameters={"STUDY_ID": "s1", "SESSION_ID": "x"})
    assert respondent.enter().status_code == 200  # the consent page; nothing stored yet
    page = respondent.post("consent", {"decision": "decline"}).content.decode()
    assert 'href="https://app.prolific.com/submissions/complete?cc=NOCONSENT&amp;p=abc%201"' in page
    assert not Participant.objects.exists() and not PersonalData.objects.exists()
    again = Respondent(study, panel_id="abc 1", parameters={"STUDY_ID": "s1", "SESSION_ID": "x"}).enter()
    assert again["Location"] == "https://app.prolific.com/submissions/complete?cc=NOCONSENT&p=abc%201"


def test_agreeing_without_confirming_age_is_refused_with_a_message(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    response = respondent.post("consent", {"decision": "agree"})
    assert response.status_code == 400
    assert "18 or older" in " ".join(_errors(response))
    assert not Participant.objects.exists()


def test_french_pages_and_messages(yukon):
    respondent = Respondent(make_study(), language="fr")
    respondent.enter()
    page = respondent.get("consent").content.decode()
    assert 'lang="fr"' in page and "J'accepte de participer" in page.replace("&#x27;", "'")
    respondent.consent()
    response = respondent.post("postal", {"postal_code": "H2O 1Y4"})
    assert response.status_code == 400 and respondent.participant.language == "fr"
    assert _errors(response) and all("postal" in error.lower() or "lettre" in error.lower() for error in _errors(response))


# --- postal code and district -------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["H2O 1Y4", "", "K1A0B", "KIA 0B1"])
def test_a_bad_postal_code_gets_a_message_and_another_try(yukon, code):
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    response = respondent.post("postal", {"postal_code": code})
    assert response.status_code == 400 and _errors(response)
    assert respondent.current_step() == flow.POSTAL
    assert respondent.post("postal", {"postal_code": YUKON}).status_code == 302


def test_an_unknown_area_gets_another_try_not_a_screen_out(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    response = respondent.post("postal", {"postal_code": UNKNOWN_FSA})
    assert response.status_code == 400 and _errors(response)
    assert respondent.participant.state == Participant.State.CONSENTED


@pytest.mark.parametrize("code", [NORTH_POLE, "90210-1234"])
def test_an_unplaceable_or_foreign_code_is_screened_out_to_the_panel(yukon, code):
    study = make_study(screenout_url_template="https://panel.example/screenout?id={pid}")
    respondent = Respondent(study, panel_id="P 9")
    respondent.enter()
    respondent.consent()
    response = respondent.post("postal", {"postal_code": code})
    assert response.status_code == 302 and response["Location"].endswith("/screened-out/")
    participant = respondent.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert participant.screenout_reason == Participant.ScreenOut.NOT_CANADIAN
    page = respondent.client.get(response["Location"]).content.decode()
    assert "https://panel.example/screenout?id=P%209" in page
    # The same panel id cannot come back for a second try.
    assert Respondent(study, panel_id="P 9").enter().status_code == 409


def test_a_decided_postal_code_places_the_participant_and_keeps_only_the_fsa(yukon):
    respondent = placed_in_yukon(make_study())
    participant = respondent.participant
    assert participant.state == Participant.State.PLACED and participant.district.fed_code == "60001"
    assert participant.fsa == "Y1A" and participant.province_code == "YT"
    assert participant.current_step == PRE_PAGES[0]
    assert PersonalData.objects.get(participant=participant).postal_code == YUKON
    stored = PageSubmission.objects.get(participant=participant, step=flow.POSTAL).answers
    assert stored == {"fsa": "Y1A", "province_code": "YT"}


def test_an_area_spanning_districts_offers_candidates_then_the_province(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    assert respondent.post("postal", {"postal_code": MONTREAL})["Location"].endswith("/district/")
    candidates = respondent.participant.district_candidates["fed_codes"]
    assert len(candidates) >= 2
    page = respondent.get("district").content.decode()
    assert "None of these" in page
    # "None of these" → every district of Quebec.
    assert respondent.post("district", {"district": "none"}).status_code == 302
    page = respondent.get("district").content.decode()
    assert "Quebec" in page and page.count('type="radio"') == 78
    # A district of another province is not among the choices.
    refused = respondent.post("district", {"district": "60001"})
    assert refused.status_code == 400 and _errors(refused)
    assert respondent.post("district", {"district": candidates[-1]}).status_code == 302
    participant = respondent.participant
    assert participant.district.fed_code == candidates[-1]
    assert participant.district_method == Participant.DistrictMethod.FALLBACK


def test_picking_a_candidate_records_the_method(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": MONTREAL})
    first = respondent.participant.district_candidates["fed_codes"][0]
    approve_images_for(District.objects.get(representation_order="2013", fed_code=first))
    respondent.post("district", {"district": first})
    participant = respondent.participant
    assert participant.district_method == Participant.DistrictMethod.PICKED
    assert participant.district.fed_code == first and participant.state == Participant.State.PLACED


# --- correcting where you live, before assignment ---------------------------------------------------------


def picked_in_montreal(study: Study, language: str = "en") -> tuple[Respondent, list[str]]:
    respondent = Respondent(study, language=language)
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": MONTREAL})
    candidates = respondent.participant.district_candidates["fed_codes"]
    for fed_code in candidates[:2]:
        approve_images_for(District.objects.get(representation_order="2013", fed_code=fed_code))
    assert respondent.post("district", {"district": candidates[0]})["Location"].endswith(f"/{PRE_PAGES[0]}/")
    return respondent, candidates


@pytest.mark.parametrize(("language", "title"), [("en", "Your federal electoral district"),
                                                 ("fr", "Votre circonscription fédérale")])
def test_a_mis_picked_district_is_corrected_from_the_ses_page_and_placement_runs_again(yukon, language, title):
    respondent, candidates = picked_in_montreal(make_study(), language)
    respondent.answer_page(PRE_PAGES[0])
    # Back from the next page to the district question: it is shown again, their pick selected.
    page = respondent.get("district")
    html_page = html.unescape(page.content.decode())
    assert page.status_code == 200 and title in html_page and "déjà enregistrée" not in html_page
    assert re.search(rf'value="{candidates[0]}"[^>]*checked', html_page)
    response = respondent.post("district", {"district": candidates[1]})
    # Placed again, and back to the page they had reached, their answers kept.
    assert response["Location"].endswith(f"/{PRE_PAGES[1]}/")
    participant = respondent.participant
    assert participant.district.fed_code == candidates[1] and participant.state == Participant.State.PLACED
    assert participant.district_method == Participant.DistrictMethod.PICKED
    submission = PageSubmission.objects.get(participant=participant, step=flow.DISTRICT)
    assert submission.revision == 2 and submission.answers["fed_code"] == candidates[1]
    assert PageSubmission.objects.filter(participant=participant, step=PRE_PAGES[0]).exists()


def test_none_of_these_on_a_corrected_district_asks_the_province_list(yukon):
    respondent, candidates = picked_in_montreal(make_study())
    assert respondent.post("district", {"district": "none"})["Location"].endswith("/district/")
    assert respondent.participant.state == Participant.State.CONSENTED  # unplaced until they pick
    assert respondent.get(PRE_PAGES[0])["Location"].endswith("/district/")
    assert respondent.post("district", {"district": candidates[1]})["Location"].endswith(f"/{PRE_PAGES[0]}/")
    assert respondent.participant.district_method == Participant.DistrictMethod.FALLBACK


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_corrected_postal_code_places_again_and_keeps_the_answers_given_since(yukon, language):
    respondent = placed_in_yukon(make_study(), language=language)
    respondent.answer_page(PRE_PAGES[0])
    page = respondent.get("postal")
    assert page.status_code == 200 and 'value="Y1A 6E5"' in page.content.decode()  # the code given, to change
    # A code whose area spans several districts: the district question, then the page they had reached.
    assert respondent.post("postal", {"postal_code": MONTREAL})["Location"].endswith("/district/")
    participant = respondent.participant
    assert participant.state == Participant.State.CONSENTED and participant.district is None
    assert (participant.fsa, participant.province_code) == ("H2X", "QC")
    fed_code = participant.district_candidates["fed_codes"][0]
    approve_images_for(District.objects.get(representation_order="2013", fed_code=fed_code))
    assert respondent.post("district", {"district": fed_code})["Location"].endswith(f"/{PRE_PAGES[1]}/")
    participant = respondent.participant
    assert participant.district.fed_code == fed_code and participant.state == Participant.State.PLACED
    assert PageSubmission.objects.get(participant=participant, step=flow.POSTAL).revision == 2
    assert PersonalData.objects.get(participant=participant).postal_code == MONTREAL
    # Back to a code that decides the district: placed at once, still where they were.
    assert respondent.post("postal", {"postal_code": YUKON})["Location"].endswith(f"/{PRE_PAGES[1]}/")
    assert respondent.participant.district.fed_code == "60001"


def test_a_corrected_postal_code_runs_eligibility_again(yukon):
    respondent = placed_in_yukon(make_study())
    respondent.answer_page(PRE_PAGES[0])
    # The Northwest Territories have no approved image: screened out, as a newcomer from there is.
    assert respondent.post("postal", {"postal_code": "X1A 2N4"})["Location"].endswith("/screened-out/")
    participant = respondent.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert participant.screenout_reason == Participant.ScreenOut.MATERIAL_MISSING


def test_where_you_live_cannot_change_after_assignment(yukon):
    respondent = placed_in_yukon(make_study(first_arm="control"))
    respondent.answer_until(lambda step: step not in PRE_PAGES)
    for step in (flow.POSTAL, flow.DISTRICT):
        assert respondent.get(step)["Location"].endswith("/wtp/")
    response = respondent.post(flow.POSTAL, {"postal_code": MONTREAL})
    assert response["Location"].endswith("/wtp/")
    assert "can no longer be changed" in respondent.client.get(response["Location"]).content.decode()
    participant = respondent.participant
    assert participant.district.fed_code == "60001" and participant.fsa == "Y1A"
    assert PageSubmission.objects.get(participant=participant, step=flow.POSTAL).revision == 1
    # The flow refuses it too, whatever a view lets through.
    with pytest.raises(flow.AlreadySubmitted):
        flow.submit_postal_code(participant, MONTREAL)


def test_a_browser_resuming_by_panel_id_cannot_change_where_the_participant_lives(yukon):
    study = make_study()
    owner = placed_in_yukon(study, panel_id="R-3")
    other = Respondent(study, panel_id="R-3")
    other.take_over()
    assert other.get(flow.POSTAL)["Location"].endswith(f"/{PRE_PAGES[0]}/")
    assert other.post(flow.POSTAL, {"postal_code": MONTREAL})["Location"].endswith(f"/{PRE_PAGES[0]}/")
    assert owner.participant.district.fed_code == "60001"


# --- pre-treatment pages, double submits, the back button ------------------------------------------------


def test_a_page_with_a_missing_answer_is_refused_and_stores_nothing(yukon):
    respondent = placed_in_yukon(make_study())
    response = respondent.post(PRE_PAGES[0], {"birth_year": "1980"})
    assert response.status_code == 400 and "Please answer this question." in _errors(response)
    assert not PageSubmission.objects.filter(step=PRE_PAGES[0]).exists()
    response = respondent.post(PRE_PAGES[0], {"birth_year": "1700"})
    assert "Please enter a whole number between 1900 and 2008." in _errors(response)


def test_a_double_submit_stores_one_row_and_keeps_the_first_answers(yukon):
    respondent = placed_in_yukon(make_study())
    first = respondent.answer_page(PRE_PAGES[0], {"birth_year": 1970})
    assert first.status_code == 302
    second = respondent.answer_page(PRE_PAGES[0], {"birth_year": 1970})  # the same form posted again
    assert second.status_code == 302
    rows = PageSubmission.objects.filter(participant=respondent.participant, step=PRE_PAGES[0])
    assert rows.count() == 1 and rows.get().answers["birth_year"] == 1970
    assert respondent.current_step() == PRE_PAGES[1]


def test_pre_treatment_answers_can_change_before_assignment_and_are_locked_after(yukon):
    respondent = placed_in_yukon(make_study(first_arm="control"))
    respondent.answer_page(PRE_PAGES[0], {"birth_year": 1970})
    # The back button before assignment: the page shows the stored answer and accepts a change.
    assert 'value="1970"' in respondent.get(PRE_PAGES[0]).content.decode()
    assert respondent.answer_page(PRE_PAGES[0], {"birth_year": 1971}).status_code == 302
    submission = PageSubmission.objects.get(participant=respondent.participant, step=PRE_PAGES[0])
    assert submission.answers["birth_year"] == 1971 and submission.revision == 2
    assert respondent.current_step() == PRE_PAGES[1]  # editing an earlier page does not move you back
    respondent.answer_until(lambda step: step not in PRE_PAGES)
    assert respondent.participant.state == Participant.State.ASSIGNED
    # After assignment: going back redirects to the current page with a notice; nothing changes.
    response = respondent.answer_page(PRE_PAGES[0], {"birth_year": 1950})
    assert response.status_code == 302 and response["Location"].endswith(f"/{respondent.current_step()}/")
    page = respondent.client.get(response["Location"]).content.decode()
    assert "can no longer be changed" in page
    submission.refresh_from_db()
    assert submission.answers["birth_year"] == 1971


@pytest.mark.parametrize(("language", "notice"), [
    ("en", "Your earlier answers are saved and can no longer be changed."),
    ("fr", "Vos réponses précédentes sont enregistrées et ne peuvent plus être modifiées."),
])
@pytest.mark.parametrize("how", ["back", "post"])
def test_after_assignment_the_locked_notice_shows_on_the_page_the_participant_lands_on(yukon, language, notice, how):
    respondent = placed_in_yukon(make_study(first_arm="house", min_exposure_seconds=0), language=language)
    respondent.answer_until(lambda step: step == flow.TREATMENT)
    # The back button (or a typed URL), or the earlier page's form sent again: the image page says why.
    response = respondent.get(PRE_PAGES[0]) if how == "back" else respondent.answer_page(PRE_PAGES[0])
    assert response.status_code == 302 and response["Location"].endswith(f"/{flow.TREATMENT}/")
    page = html.unescape(respondent.client.get(response["Location"]).content.decode())
    assert notice in page
    # Said once, where it belongs: not again on the next page.
    assert respondent.post(flow.TREATMENT, {}).status_code == 302
    assert notice not in html.unescape(respondent.get(respondent.current_step()).content.decode())


def test_a_page_ahead_of_the_participant_is_refused(yukon):
    respondent = placed_in_yukon(make_study())
    response = respondent.answer_page(PRE_PAGES[2])
    assert response.status_code == 409
    assert not PageSubmission.objects.filter(step=PRE_PAGES[2]).exists()
    # Opening it redirects to the current page instead.
    assert respondent.get(PRE_PAGES[2])["Location"].endswith(f"/{PRE_PAGES[0]}/")


def test_a_tampered_option_code_is_refused(yukon):
    respondent = placed_in_yukon(make_study())
    respondent.answer_until(lambda step: step == "party")
    response = respondent.answer_page("party", {"party_id": 4})  # Bloc Québécois, outside Quebec
    assert response.status_code == 400 and "Please choose one of the options listed." in _errors(response)


def test_bloc_quebecois_is_offered_in_quebec_only(yukon):
    respondent = placed_in_yukon(make_study())
    respondent.answer_until(lambda step: step == "party")
    assert "Bloc Québécois" not in respondent.get("party").content.decode()
    quebecer = Respondent(make_study(slug="qc"))
    quebecer.enter()
    quebecer.consent()
    quebecer.post("postal", {"postal_code": MONTREAL})
    first = quebecer.participant.district_candidates["fed_codes"][0]
    approve_images_for(District.objects.get(representation_order="2013", fed_code=first))
    quebecer.post("district", {"district": first})
    quebecer.answer_until(lambda step: step == "party")
    assert "Bloc Québécois" in quebecer.get("party").content.decode()


# --- assignment, treatment, outcomes, debrief -------------------------------------------------------------


def test_the_whole_study_for_a_treated_participant(yukon, django_capture_on_commit_callbacks):
    study = make_study(first_arm="house", complete_url_template="https://panel.example/done?id={pid}")
    respondent = placed_in_yukon(study, panel_id="PX-1")
    respondent.answer_until(lambda step: step == flow.TREATMENT)
    participant = respondent.participant
    assignment = Assignment.objects.get(participant=participant)
    assert assignment.arm == "house" and participant.attention_passed is True

    page = respondent.get(flow.TREATMENT)
    html = page.content.decode()
    assert page.status_code == 200 and "A flood in house place" in html and "/stimuli/" in html
    exposure = Exposure.objects.get(participant=participant)
    assert exposure.stimulus_id and exposure.submitted_at is None
    # Too early: refused, counted, nothing stored.
    too_early = respondent.post(flow.TREATMENT, {})
    assert too_early.status_code == 200 and "a few more seconds" in too_early.content.decode()
    exposure.refresh_from_db()
    assert exposure.early_submit_attempts == 1
    # A reload does not restart the clock nor change the image.
    served_at = exposure.page_served_at
    respondent.get(flow.TREATMENT)
    exposure.refresh_from_db()
    assert exposure.page_served_at == served_at
    # A newer approved image for the same slot does not replace the one already shown.
    from tests.support.treatments import approve_images_for

    approve_images_for(participant.district, seed=7)
    assert exposure.stimulus_id in respondent.get(flow.TREATMENT).content.decode()
    # The image is fetched: the server notes when its bytes went out.
    image = respondent.client.get(f"/stimuli/{exposure.stimulus_id}.jpg")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    Exposure.objects.filter(pk=exposure.pk).update(page_served_at=served_at - timedelta(seconds=11))
    assert respondent.post(flow.TREATMENT, {}).status_code == 302
    exposure.refresh_from_db()
    assert exposure.image_loaded_at is not None and exposure.exposure_ms >= 11_000

    # Outcomes: ask for both information e-mails and sign the letter.
    yes = {"info_emissions": 1, "info_floodprotect": 1, "letter_want": 1, "letter_signed": "on",
           "signature_name": "Ann Example", "email": "ann@example.org"}
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail task is sent on commit
        respondent.answer_until(lambda step: step == flow.DEBRIEF, overrides=yes)
    participant = respondent.participant
    assert participant.state == Participant.State.COMPLETED
    personal = PersonalData.objects.get(participant=participant)
    assert personal.signature_name == "Ann Example" and personal.email == "ann@example.org"
    answers = participant.answers()
    assert answers["letter_want"] == 1 and answers["letter_signed"] == 1
    assert "signature_name" not in answers and "email" not in answers
    requests = InformationRequest.objects.filter(participant=participant)
    assert {r.topic for r in requests} == {"info_emissions", "info_floodprotect"}
    assert {r.status for r in requests} == {InformationRequest.Status.SENT}
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.org", "ann@example.org"]

    debrief = respondent.get(flow.DEBRIEF).content.decode()
    assert "computer" in debrief and "not a photograph" in debrief
    done = respondent.post(flow.DEBRIEF, {})
    assert done.status_code == 302 and done["Location"] == "https://panel.example/done?id=PX-1"
    # The same link again goes straight back to the panel; the same panel id cannot start again.
    assert respondent.client.get(f"/take/{respondent.token}/")["Location"] == done["Location"]
    assert Respondent(study, panel_id="PX-1").enter().status_code == 409
    steps = list(PageSubmission.objects.filter(participant=participant).values_list("step", flat=True))
    assert len(steps) == len(set(steps))


def test_control_skips_the_treatment_page_and_has_no_exposure(yukon):
    respondent = placed_in_yukon(make_study(first_arm="control"))
    step = respondent.answer_until(lambda step: step not in PRE_PAGES)
    assert step == "wtp"
    assert not Exposure.objects.filter(participant=respondent.participant).exists()
    assert respondent.get(flow.TREATMENT)["Location"].endswith("/wtp/")


def test_a_district_without_approved_images_is_screened_out_before_assignment(geo2013, media):
    respondent = Respondent(make_study())  # no image approved for Yukon
    respondent.enter()
    respondent.consent()
    response = respondent.post("postal", {"postal_code": YUKON})
    # Settled as soon as the district is known: no question is asked before the screen-out.
    assert response["Location"].endswith("/screened-out/") or "screened" in response["Location"]
    participant = respondent.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert participant.screenout_reason == Participant.ScreenOut.MATERIAL_MISSING
    assert participant.screenout_detail == "distant, house, district_landmark, provincial_landmark"
    assert not PageSubmission.objects.filter(participant=participant).exclude(step__in=["consent", "postal"]).exists()
    assert not Assignment.objects.filter(participant=participant).exists()


def test_a_district_outside_the_scope_is_screened_out_at_once(yukon):
    study = make_study(scope=Study.Scope.PROVINCES, scope_provinces="QC, ON")
    respondent = Respondent(study)
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": YUKON})
    participant = respondent.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert (participant.screenout_reason, participant.screenout_detail) == ("out_of_scope", "60001")
    inside = Respondent(make_study(slug="yt", scope=Study.Scope.DISTRICTS, scope_districts="60001"))
    inside.enter()
    inside.consent()
    inside.post("postal", {"postal_code": YUKON})
    assert inside.participant.state == Participant.State.PLACED


@pytest.mark.parametrize("scope", [{"scope": Study.Scope.PROVINCES, "scope_provinces": "PE"},
                                   {"scope": Study.Scope.DISTRICTS, "scope_districts": "11001, 11002"}])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_out_of_scope_is_screened_out_right_after_the_postal_code_without_picking(yukon, scope, language):
    """A Quebec postal code on a PEI-only study: no list of Quebec ridings to choose from first."""
    respondent = Respondent(make_study(**scope), language=language)
    respondent.enter()
    respondent.consent()
    response = respondent.post("postal", {"postal_code": MONTREAL})  # several Quebec candidates
    assert response.status_code == 302 and response["Location"].endswith("/screened-out/")
    participant = respondent.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert participant.screenout_reason == Participant.ScreenOut.OUT_OF_SCOPE
    assert participant.screenout_detail.startswith("24")  # the candidates, all in Quebec
    assert not PageSubmission.objects.filter(participant=participant, step=flow.DISTRICT).exists()
    assert not PageView.objects.filter(participant=participant, step=flow.DISTRICT).exists()


def test_a_province_outside_the_scope_is_screened_out_before_its_list_of_ridings(yukon, monkeypatch):
    from studyserver.geo import services as geo

    def no_candidates(raw, order, **thresholds):  # a Quebec area with no district shape behind it
        return geo.Location(raw, "H2X 1Y4", True, None, "H2X", "QC", None, None, placeable=True)

    monkeypatch.setattr(geo, "locate", no_candidates)
    respondent = Respondent(make_study(scope=Study.Scope.PROVINCES, scope_provinces="PE"))
    respondent.enter()
    respondent.consent()
    assert respondent.post("postal", {"postal_code": MONTREAL})["Location"].endswith("/screened-out/")
    assert (respondent.participant.screenout_reason, respondent.participant.screenout_detail) == (
        Participant.ScreenOut.OUT_OF_SCOPE, "QC")


def test_a_candidate_in_the_scope_is_asked_and_picking_outside_it_screens_out(yukon):
    montreal = Respondent(make_study(slug="qc"))
    montreal.enter()
    montreal.consent()
    montreal.post("postal", {"postal_code": MONTREAL})
    candidates = montreal.participant.district_candidates["fed_codes"]
    # One candidate in the scope: the participant is asked, since their riding may be that one.
    respondent = Respondent(make_study(slug="one", scope=Study.Scope.DISTRICTS, scope_districts=candidates[0]))
    respondent.enter()
    respondent.consent()
    assert respondent.post("postal", {"postal_code": MONTREAL})["Location"].endswith("/district/")
    assert respondent.post("district", {"district": candidates[1]})["Location"].endswith("/screened-out/")
    assert (respondent.participant.screenout_reason, respondent.participant.screenout_detail) == (
        Participant.ScreenOut.OUT_OF_SCOPE, candidates[1])


def test_the_province_list_reads_in_order(yukon):
    respondent = Respondent(make_study(), language="fr")
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": MONTREAL})
    respondent.post("district", {"district": "none"})
    page = respondent.get("district").content.decode()
    names = [html.unescape(n) for n in re.findall(r'<span class="choice-name">([^<]+)</span>', page)]
    assert len(names) > 70 and names == sorted(names, key=flow.reading_order)
    assert "(Québec)" in page and "en Québec" not in page
    assert flow.reading_order("École") < flow.reading_order("Edmonton") < flow.reading_order("Fundy")


def test_a_one_district_territory_is_not_asked(yukon, monkeypatch):
    from studyserver.geo import services as geo

    def no_candidates(raw, order, **thresholds):  # an FSA of the territory with no district shape behind it
        return geo.Location(raw, "Y1A 6E5", True, None, "Y1A", "YT", None, None, placeable=True)

    monkeypatch.setattr(geo, "locate", no_candidates)
    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": YUKON})
    participant = respondent.participant
    assert participant.state == Participant.State.PLACED and participant.district.fed_code == "60001"
    assert participant.district_method == Participant.DistrictMethod.CERTAIN


def test_an_image_withdrawn_after_assignment_gets_a_clear_message_not_a_new_arm(yukon):
    from studyserver.treatments.models import Stimulus

    respondent = placed_in_yukon(make_study(first_arm="district_landmark"))
    respondent.answer_until(lambda step: step == flow.TREATMENT)
    Stimulus.objects.filter(source__kind="district_landmark").update(status=Stimulus.Status.REJECTED)
    response = respondent.get(flow.TREATMENT)
    assert response.status_code == 503 and "could not be loaded" in response.content.decode()
    assert not Exposure.objects.filter(participant=respondent.participant).exists()
    assert Assignment.objects.get(participant=respondent.participant).arm == "district_landmark"


def test_resuming_with_the_same_link_continues_where_the_participant_stopped(yukon):
    study = make_study()
    respondent = placed_in_yukon(study, panel_id="R-1")
    respondent.answer_page(PRE_PAGES[0])
    # The tab is closed; the same entry link in a new browser picks up at the next page.
    # (after a page showing nothing stored, where it continues explicitly: test_resume_disclosure.py)
    again = Respondent(study, panel_id="R-1")
    response = again.take_over()
    assert response.status_code == 302 and response["Location"].endswith(f"/{PRE_PAGES[1]}/")
    assert Participant.objects.count() == 1


def test_a_browser_resuming_by_panel_id_never_sees_or_changes_earlier_answers(yukon):
    study = make_study()
    owner = placed_in_yukon(study, panel_id="R-2")
    owner.answer_page(PRE_PAGES[0], {"birth_year": 1961})
    # The owner's own browser may still go back and correct (before assignment), pre-filled.
    assert 'value="1961"' in owner.get(PRE_PAGES[0]).content.decode()
    other = Respondent(study, panel_id="R-2")
    assert other.take_over()["Location"].endswith(f"/{PRE_PAGES[1]}/")
    # Earlier pages: back to the current step, nothing shown; a POST changes nothing.
    response = other.get(PRE_PAGES[0])
    assert response.status_code == 302 and response["Location"].endswith(f"/{PRE_PAGES[1]}/")
    assert "1961" not in other.client.get(response["Location"]).content.decode()
    assert other.post(PRE_PAGES[0], {"birth_year": 1999})["Location"].endswith(f"/{PRE_PAGES[1]}/")
    stored = PageSubmission.objects.get(participant=owner.participant, step=PRE_PAGES[0])
    assert stored.answers["birth_year"] == 1961 and stored.revision == 1
    # It can go on from the current step, as a participant who lost their tab expects.
    assert other.answer_page(PRE_PAGES[1]).status_code == 302


def test_signed_entry_links_refuse_a_guessed_panel_id(yukon):
    study = make_study(require_signed_entry=True)
    assert Respondent(study, panel_id="S-1").enter().status_code == 200  # signed by the helper
    forged = Client().get(f"/s/{study.slug}/", {"pid": "S-1", "sig": "0" * 64})
    unsigned = Client().get(f"/s/{study.slug}/", {"pid": "S-1"})
    assert forged.status_code == unsigned.status_code == 403
    assert "link is incomplete" in unsigned.content.decode()
    owner = placed_in_yukon(study, panel_id="S-2")
    # Someone knowing only S-2's panel id can neither resume it nor learn that it exists.
    probe = Client().get(f"/s/{study.slug}/", {"pid": "S-2"})
    assert probe.status_code == 403 and "/take/" not in probe.get("Location", "")
    assert owner.participant.current_step == flow.POSTAL or owner.participant.current_step in PRE_PAGES
    other_study = make_study(slug="other", require_signed_entry=True)
    assert other_study.entry_signature("S-1") != study.entry_signature("S-1")
    assert Client().get(f"/s/{other_study.slug}/", {"pid": "S-1", "sig": study.entry_signature("S-1")}).status_code == 403


def test_another_browser_cannot_open_someone_elses_pages(yukon):
    respondent = placed_in_yukon(make_study())
    stranger = Client()
    response = stranger.get(respondent.url(PRE_PAGES[0]))
    assert response.status_code == 403 and "another participant" in response.content.decode()
    assert stranger.post(respondent.url(PRE_PAGES[0]), {"birth_year": 1980}).status_code == 403
    assert not PageSubmission.objects.filter(step=PRE_PAGES[0]).exists()


def test_a_post_without_csrf_token_is_refused_clearly(yukon):
    study = make_study()
    respondent = Respondent(study, client=Client(enforce_csrf_checks=True))
    respondent.enter()
    response = respondent.post("consent", {"decision": "agree", "adult": "on"})
    assert response.status_code == 403 and "nothing was lost" in response.content.decode()
    assert not Participant.objects.exists()


def test_a_missing_panel_id_is_refused_outside_demo_mode(yukon, settings):
    settings.FLOODLIGHT_DEMO_MODE = False
    response = Respondent(make_study(), panel_id=None).enter()
    assert response.status_code == 400 and "link is incomplete" in response.content.decode()
    assert not Participant.objects.exists()


def test_a_closed_study_accepts_nobody(yukon):
    response = Respondent(make_study(is_open=False)).enter()
    assert response.status_code == 403 and not Participant.objects.exists()


def test_an_unknown_step_or_token_is_a_clear_404(yukon):
    respondent = placed_in_yukon(make_study())
    assert respondent.get("no-such-step").status_code == 404
    assert Client().get("/take/not-a-token/consent/").status_code == 404


def test_withdrawal_deletes_answers_and_personal_data_but_keeps_the_slot(yukon):
    from django.core.management import call_command

    respondent = placed_in_yukon(make_study(first_arm="control"), panel_id="W-1")
    respondent.answer_until(lambda step: step not in PRE_PAGES)
    participant = respondent.participant
    call_command("withdraw_participant", "--study", "flood", "--panel-id", "W-1")
    participant.refresh_from_db()
    assert participant.state == Participant.State.WITHDRAWN
    assert not PageSubmission.objects.filter(participant=participant).exists()
    assert not PersonalData.objects.filter(participant=participant).exists()
    assert Assignment.objects.filter(participant=participant).exists()


def test_a_mail_server_that_is_down_loses_no_request_and_fails_no_page(yukon, settings,
                                                                        django_capture_on_commit_callbacks):
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    respondent = placed_in_yukon(make_study(first_arm="control"))
    respondent.answer_until(lambda step: step == "info_email", overrides={"info_emissions": 1, "info_floodprotect": 0})
    with django_capture_on_commit_callbacks(execute=True):
        response = respondent.answer_page("info_email", {"email": "late@example.org"})
    assert response.status_code == 302
    request = InformationRequest.objects.get(participant=respondent.participant)
    assert request.status == InformationRequest.Status.PENDING and "refused" in request.last_error.lower()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("send_pending_emails", "--older-than-minutes", "0")
    request.refresh_from_db()
    assert request.status == InformationRequest.Status.SENT and mail.outbox[0].to == ["late@example.org"]


def test_simulated_respondents_take_a_demo_study_through_the_real_pages(yukon):
    from studyserver.survey.simulation import SimulationError, simulate_respondents

    study = make_study(demo=True, min_exposure_seconds=10)
    states = simulate_respondents(study, 4, seed=3)
    assert sum(states.values()) == 4 and set(states) <= {"completed", "screened_out"}
    for participant in Participant.objects.filter(study=study, state="completed"):
        assert participant.current_step == "finished" and participant.submissions.filter(step="emotions").exists()
    # Anyone placed outside Yukon found no approved image there: screened out before assignment.
    assert not Assignment.objects.filter(participant__study=study).exclude(participant__district__fed_code="60001").exists()
    with pytest.raises(SimulationError, match="not a demo study"):
        simulate_respondents(make_study(slug="real"), 1)


def test_an_oversized_body_is_a_clear_400_and_changes_nothing(yukon, settings):
    respondent = placed_in_yukon(make_study())
    response = respondent.post(PRE_PAGES[0], {"birth_year": "1980", "padding": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert response.status_code == 400 and "nothing was changed" in response.content.decode()
    assert not PageSubmission.objects.filter(step=PRE_PAGES[0]).exists()


def test_a_tampered_consent_decision_is_refused(yukon):
    respondent = Respondent(make_study())
    respondent.enter()
    response = respondent.post("consent", {"decision": "maybe", "adult": "on"})
    assert response.status_code == 400 and "Please choose one of the options listed." in response.content.decode()
    assert not Participant.objects.exists()


def test_a_full_quota_sends_later_participants_to_the_over_quota_url(yukon):
    study = make_study(first_arm="control", assignment_quota=1,
                       overquota_url_template="https://panel.example/full?id={pid}")
    first = placed_in_yukon(study, panel_id="Q-1")
    second = placed_in_yukon(study, panel_id="Q-2")  # entered while a place was still free
    first.answer_until(lambda step: step not in PRE_PAGES)
    assert first.participant.state == Participant.State.ASSIGNED
    second.answer_until(lambda step: step not in PRE_PAGES)
    participant = second.participant
    assert participant.state == Participant.State.SCREENED_OUT
    assert participant.screenout_reason == Participant.ScreenOut.OVER_QUOTA
    assert not Assignment.objects.filter(participant=participant).exists()
    page = second.client.get(f"/take/{second.token}/screened-out/").content.decode()
    assert "https://panel.example/full?id=Q-2" in page
    # They were eligible: the study is full, they are not told they are "not eligible".
    assert "This study is full" in page and "not eligible" not in page
    # Once full, a newcomer is sent straight back to the panel and nothing is stored.
    late = Respondent(study, panel_id="Q-3").enter()
    assert late.status_code == 302 and late["Location"] == "https://panel.example/full?id=Q-3"
    assert Participant.objects.filter(study=study).count() == 2
    # Someone already in the study still resumes.
    assert Respondent(study, panel_id="Q-1").take_over()["Location"].endswith(f"/{first.current_step()}/")


@pytest.mark.parametrize(("language", "says", "never"), [
    ("en", "The study has reached the number of participants it needs", "not eligible"),
    ("fr", "L'étude a atteint le nombre de participants dont elle a besoin", "pas admissible"),
])
def test_over_quota_at_assignment_says_the_study_is_full_in_both_languages(yukon, language, says, never):
    study = make_study(first_arm="control", assignment_quota=1)
    first = placed_in_yukon(study, panel_id="F-1", language=language)
    second = placed_in_yukon(study, panel_id="F-2", language=language)
    first.answer_until(lambda step: step not in PRE_PAGES)
    second.answer_until(lambda step: step not in PRE_PAGES)
    page = html.unescape(second.client.get(f"/take/{second.token}/screened-out/").content.decode())
    assert says in page and never not in page
    # Someone screened out for another reason still reads the general wording.
    outside = Respondent(make_study(slug="scope", scope=Study.Scope.PROVINCES, scope_provinces="QC"),
                         language=language)
    outside.enter()
    outside.consent()
    outside.post("postal", {"postal_code": YUKON})
    assert never in html.unescape(outside.client.get(f"/take/{outside.token}/screened-out/").content.decode())


def test_a_version_stored_before_the_study_full_text_says_so_too(yukon, settings):
    """Stored versions cannot be edited: one without the text borrows the default questionnaire's."""
    from studyserver.instrument.versions import store_version

    source = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
    older = "\n".join(line for line in source.split("\n") if not line.startswith("  study_full_"))
    version = store_version(older.replace("version: floodlight-v1", "version: before-full", 1))[0]
    assert "study_full_body" not in version.instrument.texts
    study = make_study(first_arm="control", assignment_quota=1, questionnaire=version)
    first, second = placed_in_yukon(study, panel_id="O-1"), placed_in_yukon(study, panel_id="O-2")
    first.answer_until(lambda step: step not in PRE_PAGES)
    second.answer_until(lambda step: step not in PRE_PAGES)
    assert second.participant.instrument_version == "before-full"
    page = second.client.get(f"/take/{second.token}/screened-out/").content.decode()
    assert "This study is full" in page and "not eligible" not in page


# --- fielding: the debrief per arm, the step counter, panel parameters ---------------------------------------


def _to_debrief(respondent: Respondent) -> str:
    step = respondent.answer_until(lambda step: step in {flow.TREATMENT, flow.DEBRIEF})
    if step == flow.TREATMENT:
        respondent.get(flow.TREATMENT)
        assert respondent.post(flow.TREATMENT, {}).status_code == 302
        respondent.answer_until(lambda step: step == flow.DEBRIEF)
    return html.unescape(respondent.get(flow.DEBRIEF).content.decode())


@pytest.mark.parametrize(("arm", "language", "says", "never"), [
    ("control", "en", "shown no image", "you saw was created"),
    ("distant", "en", "real, unaltered photograph of a real flood: Sylhet, Bangladesh, June 2022", "created by a computer"),
    ("house", "en", "(house place) was created by a computer", "real, unaltered"),
    ("distant", "fr", "véritable photo, non retouchée, d'une inondation réelle : Sylhet (Bangladesh), juin 2022", "créée par ordinateur"),
    ("provincial_landmark", "fr", "(lieu provincial_landmark) a été créée par ordinateur", "véritable photo"),
])
def test_the_debrief_says_what_the_arm_saw(yukon, arm, language, says, never):
    from studyserver.treatments.models import PHOTO_BACKEND, SourcePhoto, Stimulus

    SourcePhoto.objects.filter(kind="distant").update(place_name_en="Sylhet, Bangladesh, June 2022",
                                                      place_name_fr="Sylhet (Bangladesh), juin 2022")
    Stimulus.objects.filter(source__kind="distant").update(backend=PHOTO_BACKEND)
    respondent = placed_in_yukon(make_study(first_arm=arm, min_exposure_seconds=0), language=language)
    debrief = _to_debrief(respondent)
    assert says in debrief and never not in debrief


def test_a_demo_picture_shown_as_is_is_never_called_a_real_photograph(yukon):
    """The demo's "distant" picture is a simulated-world street shown as is: made by a computer."""
    from studyserver.treatments.models import PHOTO_BACKEND, SourcePhoto, Stimulus

    SourcePhoto.objects.filter(kind="distant").update(is_demo=True)
    Stimulus.objects.filter(source__kind="distant").update(backend=PHOTO_BACKEND)
    debrief = _to_debrief(placed_in_yukon(make_study(first_arm="distant", min_exposure_seconds=0, demo=True)))
    assert "created by a computer" in debrief and "real, unaltered" not in debrief


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_arm_reads_the_same_total_on_its_first_page_and_its_last(yukon, language):
    texts = []
    for arm in ("control", "house"):
        respondent = placed_in_yukon(make_study(slug=arm, first_arm=arm, min_exposure_seconds=0), language=language)
        first = re.search(r'id="progress-text">([^<]+)<', respondent.get(PRE_PAGES[0]).content.decode())[1]
        respondent.answer_until(lambda step: step not in PRE_PAGES)
        after = re.search(r'id="progress-text">([^<]+)<',
                          respondent.get(respondent.current_step()).content.decode())[1]
        texts.append((first, after))
    assert texts[0] == texts[1], texts  # "Step 3 of 12", then "Step 8 of 12" in both arms
    assert len({text.split()[-1] for pair in texts for text in pair}) == 1


@pytest.mark.parametrize("arm", ["house", "control"])
@pytest.mark.parametrize("follow_ups", [True, False])
def test_the_step_counter_counts_steadily(yukon, arm, follow_ups):
    """No jump: the total is the same from the first page to the last, for every arm (the arm is drawn
    halfway), and the number goes up by one at most; the district question, the image and the
    follow-up pages share a number with a neighbouring step."""
    respondent = Respondent(make_study(first_arm=arm, min_exposure_seconds=0))
    respondent.enter()  # the consent page is step 1; the participant exists once they agree
    respondent.consent()
    seen = [flow.progress(respondent.participant)]
    respondent.post("postal", {"postal_code": YUKON})
    answers = ({"info_emissions": 1, "letter_want": 1, "letter_signed": "on", "signature_name": "A",
                "email": "a@example.org"} if follow_ups else {"info_emissions": 0, "info_floodprotect": 0,
                                                              "letter_want": 0})
    for _ in range(30):
        participant = respondent.participant
        seen.append(flow.progress(participant))
        step = participant.current_step
        if step == flow.DEBRIEF:
            break
        if step == flow.TREATMENT:
            respondent.get(step)
            respondent.post(step, {})
        else:
            assert respondent.answer_page(step, answers).status_code == 302
    currents = [current for current, _ in seen]
    totals = {total for _, total in seen}
    assert currents[0] == 2 and all(0 <= b - a <= 1 for a, b in zip(currents, currents[1:], strict=False)), currents
    assert totals == {seen[-1][1]}, seen
    assert seen[-1][0] == seen[-1][1]  # the debrief is the last step


def test_a_prolific_style_entry_link_and_completion_url(yukon, settings):
    settings.FLOODLIGHT_DEMO_MODE = False
    study = make_study(first_arm="control", panel_id_parameter="PROLIFIC_PID", panel_parameters="STUDY_ID, SESSION_ID",
                       complete_url_template="https://app.prolific.com/submissions/complete?cc=C123&PROLIFIC_PID={pid}")
    # The generic name is not the study's: refused as an incomplete link, nothing created.
    assert Client().get(f"/s/{study.slug}/", {"pid": "X"}).status_code == 400
    assert not Participant.objects.exists()
    query = {"PROLIFIC_PID": "5f0c", "STUDY_ID": "st-9", "SESSION_ID": "se-1", "lang": "en"}
    respondent = Respondent(study, panel_id="5f0c", parameters={"STUDY_ID": "st-9", "SESSION_ID": "se-1"})
    assert respondent.enter().status_code == 200
    assert respondent.consent().status_code == 302
    respondent.post("postal", {"postal_code": YUKON})
    _to_debrief(respondent)
    done = respondent.post(flow.DEBRIEF, {})
    assert done["Location"] == "https://app.prolific.com/submissions/complete?cc=C123&PROLIFIC_PID=5f0c"
    personal = PersonalData.objects.get()
    assert personal.panel_parameters == {"STUDY_ID": "st-9", "SESSION_ID": "se-1"}
    # The same Prolific link again: already taken part, no second participant.
    assert Client().get(f"/s/{study.slug}/", query).status_code == 409
    assert Participant.objects.count() == 1
