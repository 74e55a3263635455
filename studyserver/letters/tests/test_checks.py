"""The start-up check that the instrument carries every letter text with the placeholders filled in."""

from __future__ import annotations

import dataclasses

from studyserver.instrument.definition import Text, get_instrument
from studyserver.letters import checks


def test_the_shipped_instrument_has_every_letter_text():
    assert checks.letter_texts_are_complete(None) == []


def test_a_missing_text_or_an_unknown_placeholder_is_an_error(monkeypatch):
    instrument = get_instrument()
    texts = {key: value for key, value in instrument.texts.items() if key != "letter_opening_mr"}
    texts["letter_opening_ms"] = Text("Dear Ms. {last_name} of {party},", instrument.texts["letter_opening_ms"].fr)
    broken = dataclasses.replace(instrument, texts=texts, letter=Text("To {mp_district}: …", instrument.letter.fr))
    monkeypatch.setattr(checks, "get_instrument", lambda: broken)
    messages: dict[str, list[str]] = {"letters.E001": [], "letters.E002": []}
    for error in checks.letter_texts_are_complete(None):
        messages[error.id].append(error.msg)
    assert messages["letters.E001"] == ["instrument text 'letter_opening_mr' is missing (the letter to the MP needs it)"]
    assert any("'letter_opening_ms' (en) uses ['party']" in message for message in messages["letters.E002"])
    assert any("the letter body uses ['mp_district']" in message for message in messages["letters.E002"])
