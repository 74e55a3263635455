"""Helpers for tests of other apps: a stored questionnaire version a real (non-demo) study may field."""

from __future__ import annotations

from django.conf import settings

from studyserver.instrument.models import InstrumentVersion
from studyserver.instrument.versions import store_version


def version_with_real_contacts(label: str = "floodlight-v1-r2") -> InstrumentVersion:
    """The repository's questionnaire with the ethics contacts filled in (the sample's are placeholders)."""
    source = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
    return store_version(source.replace("version: floodlight-v1", f"version: {label}", 1)
                         .replace("ethics@example.org", "reb@example.ca").replace("ethique@example.org", "reb@example.ca")
                         .replace("1-800-555-0100", "613-562-5387").replace("1 800 555-0100", "613 562-5387"))[0]
