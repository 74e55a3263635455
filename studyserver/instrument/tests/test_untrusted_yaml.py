"""A questionnaire YAML comes from a study admin's upload: it is parsed as untrusted input.

Chained aliases (the "billion laughs"), an oversized file or a huge flat document must be refused
before anything is built, quickly; a non-text value in a text is refused, never stringified.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from studyserver.accounts.roles import STUDY_ADMIN
from studyserver.instrument import definition
from studyserver.instrument.definition import (
    InstrumentError,
    load_instrument,
    parse_instrument_text,
)
from studyserver.instrument.models import InstrumentVersion
from tests.support.accounts import staff_with_roles


def _sample() -> str:
    return Path(settings.FLOODLIGHT_INSTRUMENT).read_text(encoding="utf-8")


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The re-test's upload: a0…a<levels>, each a list of ``width`` references to the previous one,
    used as a text (width**levels strings once expanded: 387 million at 9×9)."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + f"\nversion: bomb\ntexts:\n  study_title: {{en: *a{levels}, fr: x}}\n"


def test_chained_aliases_are_refused_at_once_without_expanding_them():
    started = time.perf_counter()
    with pytest.raises(InstrumentError) as caught:
        parse_instrument_text(alias_bomb(), "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    (problem,) = caught.value.problems
    assert problem.startswith("line 1: bomb.yaml is not valid YAML") and "anchors and aliases" in problem


def test_a_single_anchor_is_refused_too_naming_its_line():
    source = _sample().replace("study_title:", "study_title: &title", 1)
    with pytest.raises(InstrumentError) as caught:
        parse_instrument_text(source)
    line = next(n for n, text in enumerate(source.splitlines(), start=1) if "&title" in text)
    assert caught.value.problems[0].startswith(f"line {line}:")


def test_an_oversized_definition_is_refused_before_parsing(monkeypatch):
    parsed = []
    monkeypatch.setattr(definition, "_load_yaml", lambda source: parsed.append(source))
    source = _sample() + "#" * definition.MAX_DEFINITION_BYTES
    with pytest.raises(InstrumentError, match="a questionnaire is at most 1,024 KB"):
        parse_instrument_text(source)
    assert parsed == []


def test_a_flat_document_past_the_node_budget_is_refused():
    source = "version: big\nfiller: [" + ",".join(["0"] * (definition.MAX_DEFINITION_NODES + 1)) + "]\n"
    assert len(source) < definition.MAX_DEFINITION_BYTES
    with pytest.raises(InstrumentError, match="more than 100,000 values"):
        parse_instrument_text(source)


def test_a_list_or_mapping_in_a_text_is_refused_not_stringified():
    document = yaml.safe_load(_sample())
    document["texts"]["study_title"]["en"] = ["lol"] * 50
    document["texts"]["continue"] = {"en": {"nested": "x"}, "fr": "Continuer"}
    with pytest.raises(InstrumentError) as caught:
        parse_instrument_text(yaml.safe_dump(document, allow_unicode=True))
    problems = caught.value.problems
    assert any("texts.study_title: the 'en' text must be text, got a list" in p for p in problems)
    assert any("texts.continue: the 'en' text must be text, got a mapping" in p for p in problems)
    assert not any("lol" in p for p in problems)


@pytest.mark.parametrize("where, value", [("pages", "not a list"), ("texts", ["a", "list"]),
                                          ("information_emails", 3)])
def test_a_malformed_section_is_a_problem_not_a_traceback(where, value):
    document = yaml.safe_load(_sample())
    document[where] = value
    with pytest.raises(InstrumentError, match=where):
        parse_instrument_text(yaml.safe_dump(document, allow_unicode=True))


def test_load_instrument_goes_through_the_same_checks(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(InstrumentError, match="anchors and aliases"):
        load_instrument(bomb)
    big = tmp_path / "big.yaml"
    big.write_text(_sample() + "#" * definition.MAX_DEFINITION_BYTES, encoding="utf-8")
    with pytest.raises(InstrumentError, match="at most 1,024 KB"):
        load_instrument(big)


@pytest.mark.django_db
def test_the_load_instrument_command_refuses_a_bomb_and_an_oversized_file(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(CommandError, match="anchors and aliases"):
        call_command("load_instrument", str(bomb))
    big = tmp_path / "big.yaml"
    big.write_text(_sample() + "#" * definition.MAX_DEFINITION_BYTES, encoding="utf-8")
    with pytest.raises(CommandError, match="at most 1,024 KB"):
        call_command("load_instrument", str(big))
    assert not InstrumentVersion.objects.filter(filename__in=["bomb.yaml", "big.yaml"]).exists()


@pytest.mark.django_db
def test_the_admin_upload_answers_a_bomb_at_once_and_stores_nothing(client):
    client.force_login(staff_with_roles("admin1", STUDY_ADMIN))
    before = InstrumentVersion.objects.count()
    started = time.perf_counter()
    response = client.post("/admin/instrument/instrumentversion/add/",
                           {"upload": SimpleUploadedFile("bomb.yaml", alias_bomb().encode()), "note": ""})
    assert time.perf_counter() - started < 5.0
    assert response.status_code == 200 and "anchors and aliases" in response.content.decode()
    big = SimpleUploadedFile("big.yaml", (_sample() + "#" * definition.MAX_DEFINITION_BYTES).encode())
    response = client.post("/admin/instrument/instrumentversion/add/", {"upload": big, "note": ""})
    assert "a questionnaire is at most 1,024 KB" in response.content.decode()
    assert InstrumentVersion.objects.count() == before
