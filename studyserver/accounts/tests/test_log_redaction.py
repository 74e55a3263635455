"""Every study's panel-id parameter and kept parameters stay out of the log lines Django writes."""

from __future__ import annotations

import io
import logging

import pytest

from studyserver.accounts.logging import RedactPanelIds, redact
from studyserver.studies.models import Study


def _console_handler() -> logging.Handler:
    """The handler settings.LOGGING gives the root logger (the one runserver's request log uses)."""
    return next(h for h in logging.getLogger("django.server").handlers
                if any(isinstance(f, RedactPanelIds) for f in h.filters))


@pytest.mark.django_db
@pytest.mark.parametrize("parameter, kept", [("PROLIFIC_PID", "STUDY_ID, SESSION_ID"), ("rid", "psid"),
                                             ("participant", "wave, source")])
def test_a_studys_own_parameter_names_are_redacted_in_the_request_log(client, parameter, kept):
    study = Study.objects.create(slug="panel", title="Panel", is_open=True, panel_id_parameter=parameter,
                                 panel_parameters=kept)
    names = [parameter, *study.kept_parameters()]
    query = "&".join(f"{name}=SECRET-{n}" for n, name in enumerate(names)) + "&lang=fr"
    assert client.get(f"/s/panel/?{query}").status_code == 200  # the link works as the panel sends it
    handler = _console_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logging.getLogger("django.server").info('"%s" %s %s', f"GET /s/panel/?{query} HTTP/1.1", "200", "512")
        exit_url = study.exit_url("complete", "SECRET-exit", {name: "SECRET-kept" for name in names[1:]})
        logging.getLogger("studyserver").warning("redirecting to %s", exit_url)
    finally:
        handler.setStream(previous)
    written = stream.getvalue()
    assert "SECRET" not in written, written
    assert all(f"{name}=[redacted]" in written for name in names) and "lang=fr" in written


def test_harmless_navigation_stays_readable_and_anything_else_is_redacted():
    assert redact("GET /admin/studies/study/?o=2&p=3&study=wave1 HTTP/1.1") == (
        "GET /admin/studies/study/?o=2&p=3&study=wave1 HTTP/1.1")
    assert redact('"GET /done/complete/?rid=R%2042;psid=9&x= HTTP/1.1"') == (
        '"GET /done/complete/?rid=[redacted];psid=[redacted]&x= HTTP/1.1"')
    assert redact("https://panel.example/c?PROLIFIC_PID=abc&next=/s/x/?pid=1 then") == (
        "https://panel.example/c?PROLIFIC_PID=[redacted]&next=[redacted] then")
    assert redact("Is this right? yes") == "Is this right? yes"
