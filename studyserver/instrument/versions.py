"""Loading questionnaire versions into the database and asking what is wrong with one.

``store_version`` is what ``manage.py load_instrument`` and the admin upload call: the same checks
as ``check_instrument`` (parity, codes, conditions, page texts, with line numbers), then one new
immutable row, or the existing row when the same text was loaded before.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from studyserver.core.times import shown

from .definition import (
    Instrument,
    InstrumentError,
    content_hash,
    parse_instrument_text,
    read_definition,
)
from .models import InstrumentVersion

# Contacts reserved for examples (RFC 2606 domains, the fictional 555-01xx telephone range):
# what the repository's sample questionnaire shows, never what a fielded study may show.
PLACEHOLDER_CONTACT = re.compile(
    r"[\w.+-]+@(?:example|exemple)\.(?:org|net|com)|(?:\+?1[- .]?)?(?:\(?\d{3}\)?[- .]?)?\b555[- .]01\d\d\b",
    re.IGNORECASE,
)
# Texts that legitimately show an example address (the format hint of the e-mail field).
_EXAMPLE_TEXTS = frozenset({"error_email"})
CONSENT_TEXTS: tuple[str, ...] = ("consent_title", "consent_body", "consent_age", "consent_agree")


def consent_label(instrument: Instrument) -> str:
    """The recorded consent version: the file's label plus a hash of the consent text itself, so two
    different consent texts can never be recorded under one label."""
    digest = hashlib.sha256()
    for key in CONSENT_TEXTS:
        text = instrument.texts.get(key)
        if text is not None:
            digest.update(f"{key}\0{text.en}\0{text.fr}\0".encode())
    declared = instrument.consent_version[:11]
    return f"{declared}/{digest.hexdigest()[:8]}" if declared else digest.hexdigest()[:8]


def version_fields(source: str, filename: str = "") -> dict[str, str]:
    """The stored fields of ``source`` (validated): shared with the data migrations."""
    instrument = parse_instrument_text(source, filename or "instrument")
    return {"content_hash": content_hash(source), "label": instrument.version,
            "consent_version": consent_label(instrument), "source": source, "filename": filename[:255]}


def check_source(source: str, filename: str = "") -> Instrument:
    """The parsed instrument of ``source`` if it can be stored (new or already stored), else
    :class:`InstrumentError` listing every problem with its line."""
    instrument = parse_instrument_text(source, filename or "instrument")
    digest = content_hash(source)
    if InstrumentVersion.objects.filter(content_hash=digest).exists():
        return instrument
    if len(instrument.version) > InstrumentVersion._meta.get_field("label").max_length:
        problem = f"version: {instrument.version!r} is longer than 40 characters"
        raise InstrumentError(problem, [problem])
    clash = InstrumentVersion.objects.filter(label=instrument.version).first()
    if clash is not None:
        problem = (f"version: {instrument.version!r} is already stored with a different text (loaded "
                   f"{shown(clash.created_at)}); give the revision a new `version:` so that exports "
                   "can tell the two apart")
        raise InstrumentError(problem, [problem])
    return instrument


def store_version(source: str, *, filename: str = "", user: Any = None, note: str = "") -> tuple[InstrumentVersion, bool]:
    """(version, created). Raises :class:`InstrumentError` listing every problem, with lines."""
    instrument = check_source(source, filename)
    digest = content_hash(source)
    existing = InstrumentVersion.objects.filter(content_hash=digest).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            version = InstrumentVersion.objects.create(
                content_hash=digest, label=instrument.version, consent_version=consent_label(instrument),
                source=source, filename=filename[:255], note=note[:300],
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:  # the same text loaded at the same moment elsewhere
        return InstrumentVersion.objects.get(content_hash=digest), False
    return version, True


def default_version() -> InstrumentVersion:
    """The version of ``settings.FLOODLIGHT_INSTRUMENT`` (stored on first use): new studies start there."""
    source, digest = read_definition(settings.FLOODLIGHT_INSTRUMENT)
    existing = InstrumentVersion.objects.filter(content_hash=digest).first()
    if existing is not None:
        return existing
    return store_version(source, filename=str(settings.FLOODLIGHT_INSTRUMENT))[0]


def instrument_problems(version: InstrumentVersion | Instrument, demo: bool) -> list[str]:
    """What keeps ``version`` from being shown to real participants ([] when nothing).

    A demo study may show the sample's placeholder contacts; a real one may not: participants
    would be told to write to an address nobody reads. Called by the admin and the readiness check.
    """
    instrument = version.instrument if isinstance(version, InstrumentVersion) else version
    if demo:
        return []
    problems = []
    named = [(f"texts.{key}", text) for key, text in instrument.texts.items() if key not in _EXAMPLE_TEXTS]
    named.append(("letter", instrument.letter))
    for code, (subject, body) in instrument.information_emails.items():
        named += [(f"information_emails.{code}.subject", subject), (f"information_emails.{code}.body", body)]
    for where, text in named:
        for language in ("en", "fr"):
            found = sorted(set(PLACEHOLDER_CONTACT.findall(text.get(language))))
            if found:
                problems.append(
                    f"{instrument.version}: {where} ({language}) shows the placeholder contact "
                    f"{', '.join(found)}: load a version with the study's real ethics contacts"
                )
    return problems
