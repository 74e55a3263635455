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
