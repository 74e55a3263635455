"""The letter page, through the real views: named member, fallback wording, paragraphs, the record
(made when the page is submitted: serving it writes nothing but the page-view record)."""

from __future__ import annotations

import re

import pytest

from studyserver.geo.models import District
from studyserver.letters.addressing import paragraphs
from studyserver.letters.models import AddressedLetter
from studyserver.survey import flow
from studyserver.survey.tests.conftest import Respondent, make_study

from .helpers import make_member

pytestmark = pytest.mark.django_db
LETTER_PAGE = "letter_sign"


def at_letter_page(language: str = "en", panel_id: str = "P-1") -> Respondent:
    respondent = Respondent(make_study(first_arm="control"), panel_id=panel_id, language=language)
    respondent.enter()
    respondent.consent()
    respondent.post(flow.POSTAL, {"postal_code": "Y1A 6E5"})
    assert respondent.answer_until(lambda step: step == LETTER_PAGE, overrides={"letter_want": 1}) == LETTER_PAGE
    return respondent


def sign(respondent: Respondent, name: str = "Ann Example"):
    response = respondent.post(LETTER_PAGE, {"letter_signed": "on", "signature_name": name})
    assert response.status_code == 302
    return response


def letter_html(response) -> str:
    return re.search(r'<blockquote class="letter"[^>]*>(.*?)</blockquote>', response.content.decode(), re.S).group(1)


def test_the_letter_names_the_member_and_records_it(yukon):
    member = make_member(yukon, "Jane", "O'Doe", salutation="ms", honorific="Hon.")
    respondent = at_letter_page()
    page = respondent.get(LETTER_PAGE)
    html = page.content.decode()
    assert "Dear Ms. Jane O&#x27;Doe, Member of Parliament for Yukon," in html  # escaped like any text
    assert "addressed to Jane O&#x27;Doe, Member of Parliament for Yukon" in html
    assert not AddressedLetter.objects.exists()  # shown, not yet signed: nothing recorded
    sign(respondent)  # signing records whom it was addressed to
    letter = AddressedLetter.objects.get(participant=respondent.participant)
    assert letter.representative == member and letter.language == "en" and letter.district == yukon
    assert letter.opening == "Dear Ms. Jane O'Doe, Member of Parliament for Yukon,"


def test_serving_the_letter_page_writes_only_its_page_view(yukon):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_member(yukon, "Jane", "Doe", salutation="ms")
    respondent = at_letter_page()
    for _ in range(2):  # the first serve inserts the page view, a reload updates it
        with CaptureQueriesContext(connection) as queries:
            assert respondent.get(LETTER_PAGE).status_code == 200
        writes = [q["sql"] for q in queries.captured_queries
                  if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
        assert writes and all('"survey_pageview"' in sql for sql in writes), writes
    assert not AddressedLetter.objects.exists()


def test_paragraphs_are_paragraphs_without_the_sources_line_breaks(yukon):
    page = at_letter_page().get(LETTER_PAGE)
    letter = letter_html(page)
    assert "<br" not in letter
    texts = re.findall(r"<p>(.*?)</p>", letter, re.S)
    assert len(texts) == 3 and all("\n" not in text for text in texts)
    assert texts[1].startswith("Floods are becoming") and texts[1].endswith("prepare for floods.")
    assert texts[2] == "Sincerely,"


def test_french_letter_with_a_member_without_known_gender(yukon):
    make_member(yukon, "Brendan", "Hanley")
    respondent = at_letter_page("fr")
    letter = letter_html(respondent.get(LETTER_PAGE))
    assert "À Brendan Hanley, député(e) de Yukon," in letter and "Les inondations" in letter
    sign(respondent)
    assert AddressedLetter.objects.get().language == "fr"


@pytest.mark.parametrize(("riding", "member", "opening", "intro"), [
    ("Egmont", True, "À Brendan Hanley, député(e) d'Egmont,", "adressée à Brendan Hanley, député(e) d'Egmont."),
    ("Egmont", False, "À la ou au député d'Egmont,", "adressée à la ou au député d'Egmont."),
    ("Halifax", True, "À Brendan Hanley, député(e) d'Halifax,", "député(e) d'Halifax."),
    ("Malpeque", True, "À Brendan Hanley, député(e) de Malpeque,", "député(e) de Malpeque."),
])
def test_french_elides_de_before_a_vowel_or_a_mute_h_on_the_page(yukon, riding, member, opening, intro):
    yukon.name_fr = riding  # the riding's French name is all that matters here
    yukon.save()
    if member:
        make_member(yukon, "Brendan", "Hanley")
    page = at_letter_page("fr").get(LETTER_PAGE).content.decode().replace("&#x27;", "'")
    assert opening in page and intro in page


def test_french_salutations_follow_the_roster(yukon):
    member = make_member(yukon, "Éloïse", "Côté", salutation="ms")
    respondent = at_letter_page("fr")
    assert "Madame Éloïse Côté, députée de Yukon," in letter_html(respondent.get(LETTER_PAGE))
    member.salutation = "mr"
    member.save()
    assert "Monsieur Éloïse Côté, député de Yukon," in letter_html(respondent.get(LETTER_PAGE))


def test_a_vacant_or_unloaded_seat_keeps_the_riding_wording(yukon):
    make_member(yukon, "Former", "Member", is_current=False)
    respondent = at_letter_page()
    page = respondent.get(LETTER_PAGE)
    assert "To the Member of Parliament for Yukon," in letter_html(page)
    assert "addressed to the Member of Parliament for Yukon" in page.content.decode()
    sign(respondent)
    assert AddressedLetter.objects.get().representative is None


def test_withdrawal_deletes_the_letter_record(yukon):
    respondent = at_letter_page()
    respondent.get(LETTER_PAGE)
    sign(respondent)
    assert AddressedLetter.objects.exists()
    flow.withdraw(respondent.participant)
    assert not AddressedLetter.objects.exists()


def test_paragraphs_join_source_wrapping_and_split_on_blank_lines():
    assert paragraphs("One line\n  wrapped here.\n\n\nTwo.\n \nThree,\n") == ["One line wrapped here.", "Two.", "Three,"]


def test_the_member_is_read_from_the_cache_until_a_load_changes_the_seat(yukon, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    respondent = at_letter_page()
    assert "To the Member of Parliament for Yukon," in letter_html(respondent.get(LETTER_PAGE))  # vacant
    with CaptureQueriesContext(connection) as queries:
        assert "To the Member of Parliament for Yukon," in letter_html(respondent.get(LETTER_PAGE))
    assert not [q["sql"] for q in queries.captured_queries if '"letters_representative"' in q["sql"]]
    with django_capture_on_commit_callbacks(execute=True):  # a load commits a new member
        member = make_member(yukon, "Jane", "Doe", salutation="ms")
    assert "Dear Ms. Jane Doe," in letter_html(respondent.get(LETTER_PAGE))
    with django_capture_on_commit_callbacks(execute=True):  # a by-election: the seat vacant again
        member.is_current = False
        member.save(update_fields=["is_current"])
    assert "To the Member of Parliament for Yukon," in letter_html(respondent.get(LETTER_PAGE))
    sign(respondent)
    assert AddressedLetter.objects.get().representative is None


def test_a_ticked_signature_without_a_typed_name_is_refused_on_the_name(yukon):
    make_member(yukon, "Jane", "Doe", salutation="ms")
    respondent = at_letter_page()
    response = respondent.post(LETTER_PAGE, {"letter_signed": "on", "signature_name": "   "})
    assert response.status_code == 400  # the page again with its error, nothing stored
    html = response.content.decode()
    assert 'id="id_signature_name_error"' in html
    assert "Please type your name to sign, or untick the box." in html
    assert respondent.participant.current_step == LETTER_PAGE
    assert not AddressedLetter.objects.exists()
    sign(respondent)  # typed this time: accepted
    assert AddressedLetter.objects.filter(participant=respondent.participant).exists()


def _hidden_addressee(html: str) -> str:
    return re.search(r'<input type="hidden" name="letter_addressee" value="([^"]*)">', html).group(1)


def test_the_letter_recorded_is_the_one_read_when_the_seat_changes_hands_meanwhile(yukon):
    first = make_member(yukon, "Jane", "Doe", salutation="ms")
    respondent = at_letter_page()
    shown = _hidden_addressee(respondent.get(LETTER_PAGE).content.decode())
    assert shown == str(first.pk)
    first.is_current = False  # a by-election is loaded while the participant reads
    first.save()
    make_member(yukon, "John", "Roe", salutation="mr")
    respondent.post(LETTER_PAGE, {"letter_signed": "on", "signature_name": "Ann Example",
                                  "letter_addressee": shown})
    letter = AddressedLetter.objects.get(participant=respondent.participant)
    assert letter.representative == first and letter.opening.startswith("Dear Ms. Jane Doe,")


def test_the_riding_wording_shown_for_a_vacant_seat_is_the_wording_recorded(yukon):
    respondent = at_letter_page()
    assert _hidden_addressee(respondent.get(LETTER_PAGE).content.decode()) == ""
    make_member(yukon, "John", "Roe", salutation="mr")
    respondent.post(LETTER_PAGE, {"letter_signed": "on", "signature_name": "Ann Example", "letter_addressee": ""})
    assert AddressedLetter.objects.get(participant=respondent.participant).representative is None


@pytest.mark.parametrize("sent", [None, "not-a-number", "other-district"])
def test_an_addressee_not_sent_or_not_of_the_riding_gives_the_current_member(yukon, sent):
    member = make_member(yukon, "Jane", "Doe", salutation="ms")
    respondent = at_letter_page()
    data = {"letter_signed": "on", "signature_name": "Ann Example"}
    if sent == "other-district":
        other = District.objects.exclude(pk=yukon.pk).first()
        sent = str(make_member(other, "Someone", "Else").pk)
    if sent is not None:
        data["letter_addressee"] = sent
    respondent.post(LETTER_PAGE, data)
    assert AddressedLetter.objects.get(participant=respondent.participant).representative == member
