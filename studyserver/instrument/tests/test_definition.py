import copy
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from studyserver.instrument.definition import InstrumentError, get_instrument, parse_instrument


@pytest.fixture
def document():
    return yaml.safe_load(Path(settings.FLOODLIGHT_INSTRUMENT).read_text(encoding="utf-8"))


def test_the_study_instrument_loads_with_unique_codes_in_both_languages():
    instrument = get_instrument()
    codes = [item.code for item in instrument.items]
    assert len(codes) == len(set(codes))
    for item in instrument.items:
        assert item.text.en and item.text.fr and item.label.en and item.label.fr
        for option in item.options:
            assert option.text.en and option.text.fr
    assert [p.phase for p in instrument.pages] == sorted((p.phase for p in instrument.pages), key=["pre", "post"].index)


def test_study_items_of_the_protocol_are_present():
    codes = set(get_instrument().answer_codes)
    for code in ["ideology", "worry", "attention_check", "wtp_tax_oil", "info_emissions", "letter_want",
                 "letter_signed", "emo_anxious", "emo_hopeful", "party_id"]:
        assert code in codes
    assert "email" not in codes and "signature_name" not in codes  # personal data never among answers


def test_missing_french_text_fails_the_parity_check(document):
    broken = copy.deepcopy(document)
    broken["pages"][0]["items"][0]["text"].pop("fr")
    with pytest.raises(InstrumentError, match="missing 'fr' text"):
        parse_instrument(broken)


def test_condition_on_a_later_page_is_refused(document):
    broken = copy.deepcopy(document)
    broken["pages"][0]["items"][0]["when"] = {"item": "letter_want", "in": [1]}
    with pytest.raises(InstrumentError, match="not asked on an earlier page"):
        parse_instrument(broken)


def test_duplicate_codes_and_unknown_option_sets_are_reported_together(document):
    broken = copy.deepcopy(document)
    broken["pages"][1]["items"][0]["code"] = "gender"
    broken["pages"][1]["items"][1]["options"] = "no_such_set"
    with pytest.raises(InstrumentError) as error:
        parse_instrument(broken)
    assert "code used twice" in str(error.value) and "unknown option set" in str(error.value)


def test_bloc_quebecois_is_offered_in_quebec_only():
    party = get_instrument().item("party_id")
    assert 4 in [o.code for o in party.options_for("QC")]
    assert 4 not in [o.code for o in party.options_for("ON")]


def test_check_instrument_command_fails_on_a_broken_file(tmp_path, document):
    broken = copy.deepcopy(document)
    broken["texts"]["continue"] = {"en": "Continue"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CommandError, match="texts.continue"):
        call_command("check_instrument", str(path))


@pytest.mark.parametrize(("key", "language"), [("consent_body", "fr"), ("debrief_body", "en")])
def test_a_consent_or_debrief_paragraph_missing_in_one_language_fails_check_instrument(tmp_path, document, key,
                                                                                      language):
    broken = copy.deepcopy(document)
    lines = [line for line in broken["texts"][key][language].split("\n") if line.strip()]
    broken["texts"][key][language] = "\n".join(lines[:-1])  # the last paragraph left untranslated
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    counts = (len(lines), len(lines) - 1) if language == "fr" else (len(lines) - 1, len(lines))
    with pytest.raises(CommandError, match=rf"texts\.{key}: the English text has {counts[0]} paragraph\(s\) "
                                           rf"and the French {counts[1]}"):
        call_command("check_instrument", str(path))


def test_the_sample_consent_describes_what_the_pages_do_in_both_languages():
    """No page offers to skip a question: the consent must not promise it, in either language."""
    instrument = get_instrument()
    english, french = instrument.text("consent_body", "en"), instrument.text("consent_body", "fr")
    assert "skip" not in english.lower() and "passer" not in french.lower()
    assert "closing this page" in english and "en fermant cette page" in french
    assert "marked optional" in english and "indiquées comme facultatives" in french


def _page(document, key):
    return next(page for page in document["pages"] if page["key"] == key)


def _item(document, code):
    return next(item for page in document["pages"] for item in page.get("items", ()) if item["code"] == code)


def test_special_pages_and_items_are_flags_of_the_definition_not_keys_of_the_code(document):
    renamed = copy.deepcopy(document)
    _page(renamed, "info_email")["key"] = "contact"
    _item(renamed, "letter_signed")["code"] = "signed"
    instrument = parse_instrument(renamed)
    assert [page.key for page in instrument.pages if page.role == "information_email"] == ["contact"]
    assert instrument.signature_item.code == "signed" and instrument.signature_item.page == "letter_sign"
    assert instrument.page("letter_sign").signature_name.code == "signature_name"


def test_a_definition_written_before_roles_keeps_what_its_keys_meant(document):
    legacy = copy.deepcopy(document)  # a stored version is never edited: it has no role: lines
    del _page(legacy, "info_email")["role"]
    del _item(legacy, "letter_signed")["role"]
    instrument = parse_instrument(legacy)
    assert instrument.page("info_email").role == "information_email"
    assert instrument.signature_item.code == "letter_signed"
    flagged = copy.deepcopy(legacy)  # one that flags roles itself is taken as written
    _page(flagged, "letter")["role"] = "information_email"
    _page(flagged, "letter")["items"].append({"code": "mail", "type": "email", "personal": "email",
                                              "label": {"en": "a", "fr": "a"}, "text": {"en": "a", "fr": "a"}})
    assert [page.key for page in parse_instrument(flagged).pages if page.role] == ["letter"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: _page(d, "letter").update(role="mailing"), "role must be one of"),
    (lambda d: _page(d, "letter").update(role="information_email"), "only one page may have role"),
    (lambda d: _page(d, "info_email")["items"][0].pop("personal"), "it needs an item with 'personal: email'"),
    (lambda d: _item(d, "letter_want").update(role="signature"), "only one item may have role"),
    (lambda d: _item(d, "signature_name").pop("personal"), "beside an item with 'personal: signature_name'"),
])
def test_a_role_without_what_it_needs_is_refused(document, change, message):
    broken = copy.deepcopy(document)
    change(broken)
    with pytest.raises(InstrumentError, match=message):
        parse_instrument(broken)
