"""The letter a participant is shown: addressed to their district's current member, or to the riding.

The wording comes from the instrument (``letter`` and ``texts.letter_opening_*``), in the
participant's language. Serving the page records nothing; submitting it records the letter as
addressed then (:class:`AddressedLetter`), so the delivered letter is the one signed, even after a
by-election or a change of wording.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from studyserver.instrument.definition import Instrument, get_instrument

from .models import AddressedLetter, Representative

OPENING_KEYS = {
    Representative.Salutation.MS: "letter_opening_ms",
    Representative.Salutation.MR: "letter_opening_mr",
    Representative.Salutation.UNKNOWN: "letter_opening_member",
}
# Every text the letters need, with the placeholders the code fills in (checked at start-up).
REQUIRED_TEXTS = {
    "letter_intro": {"mp_district"},
    "letter_intro_member": {"member", "mp_district"},
    "letter_opening_ms": {"first_name", "last_name", "mp_district"},
    "letter_opening_mr": {"first_name", "last_name", "mp_district"},
    "letter_opening_member": {"first_name", "last_name", "mp_district"},
    "letter_opening_riding": {"mp_district"},
    "letter_signed_line": {"date", "mp_district"},
}


def paragraphs(text: str) -> list[str]:
    """Paragraphs of a text: blank lines separate them, single line breaks are source wrapping."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return [" ".join(line.strip() for line in block.splitlines() if line.strip()) for block in blocks
            if block.strip()]


# French elides "de" before a vowel or a mute h: "député(e) d'Egmont", "d'Halifax", but "de Malpeque".
# The riding is only known when the text is filled in, so the preposition in front of the
# placeholder is elided then (an "h" in a riding's name is mute, as in d'Hamilton, d'Hochelaga).
_DE_BEFORE_RIDING = re.compile(r"\bde \{mp_district\}")
_ELIDING_LETTERS = frozenset("aeiouh")


def elides(name: str) -> bool:
    """Whether French "de" becomes "d'" before ``name`` (a vowel, accented or not, or a mute h)."""
    first = unicodedata.normalize("NFD", name.strip())[:1].casefold()
    return first in _ELIDING_LETTERS


def letter_text(instrument: Instrument, key: str, language: str, **values: Any) -> str:
    """The instrument text ``key`` filled in, with French "de {mp_district}" elided where the riding asks."""
    template = instrument.texts[key].get(language)
    if language == "fr" and elides(str(values.get("mp_district", ""))):
        template = _DE_BEFORE_RIDING.sub("d'{mp_district}", template)
    return template.format(**values)


def riding_name(district, language: str) -> str:
    """The district's name as written to its member: the data files' ASCII "--" is an em dash."""
    return district.name(language).replace("--", "—") if district is not None else ""


# Rows that rarely change (a load of the House of Commons list) read on every letter page: kept in
# Django's cache, dropped when a member is saved (see :func:`forget_representatives`). Without a
# shared cache (no Redis: one per process) another process may keep a replaced member this long.
REPRESENTATIVE_CACHE_SECONDS = 300
_NO_MEMBER = "vacant"  # cached for a district without a current member (None means "not cached")


def _representative_key(district_id: int) -> str:
    return f"letters:current-representative:{district_id}"


def current_representative(district) -> Representative | None:
    if district is None:
        return None
    key = _representative_key(district.pk)
    cached = cache.get(key)
    if cached is None:
        cached = Representative.objects.filter(district_id=district.pk, is_current=True).first() or _NO_MEMBER
        cache.set(key, cached, REPRESENTATIVE_CACHE_SECONDS)
    return None if cached == _NO_MEMBER else cached


def forget_representatives(sender: Any, instance: Representative, **kwargs: Any) -> None:
    """Receiver of Representative's post_save/post_delete: the district's cached member goes now
    and again once the change is committed (a page served meanwhile could cache the old member)."""
    key = _representative_key(instance.district_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def opening_line(representative: Representative | None, district, language: str,
                 instrument: Instrument | None = None) -> str:
    instrument = instrument or get_instrument()
    riding = riding_name(district, language)
    if representative is None:
        return letter_text(instrument, "letter_opening_riding", language, mp_district=riding)
    return letter_text(instrument, OPENING_KEYS.get(representative.salutation, "letter_opening_member"), language,
                           first_name=representative.first_name, last_name=representative.last_name,
                           mp_district=riding)


def compose(participant, language: str, representative: Representative | None,
            instrument: Instrument | None = None) -> AddressedLetter:
    """An unsaved letter for ``participant`` in ``language`` to ``representative`` (or the riding)."""
    instrument = instrument or get_instrument()
    district = participant.district
    return AddressedLetter(
        participant=participant, district=district, representative=representative, language=language,
        opening=opening_line(representative, district, language, instrument),
        body="\n\n".join(paragraphs(instrument.letter.get(language))),
        addressed_at=timezone.now(),
    )


#: The letter page's hidden field: whom the letter shown was addressed to (a member's id, or empty
#: for the riding's wording), so that the letter recorded is the one read even if the seat changed
#: hands between showing the page and submitting it.
ADDRESSEE_FIELD = "letter_addressee"


def addressee_shown(participant, submitted: Mapping[str, str]) -> Representative | None | Literal["unknown"]:
    """The addressee the page showed, as sent back: a member of the participant's own district, or
    None for the riding's wording; ``"unknown"`` when the form did not say (or named anyone else)."""
    value = submitted.get(ADDRESSEE_FIELD)
    if value is None:
        return "unknown"
    if value == "":
        return None
    if not value.isdigit():
        return "unknown"
    shown = Representative.objects.filter(pk=int(value), district_id=participant.district_id).first()
    return shown if shown is not None else "unknown"


def address_letter(participant, language: str, instrument: Instrument | None = None,
                   submitted: Mapping[str, str] | None = None) -> AddressedLetter:
    """The letter the participant read, recorded as theirs (when the letter page is submitted):
    addressed to whom the page showed, else to the member current now.

    The letter page is locked once submitted, so the record is the letter the participant signed.
    """
    shown = addressee_shown(participant, submitted or {})
    representative = current_representative(participant.district) if shown == "unknown" else shown
    letter = compose(participant, language, representative, instrument)
    _record(letter)
    return letter


_RECORDED_FIELDS = ("district", "representative", "language", "opening", "body", "addressed_at")


def _record(letter: AddressedLetter) -> None:
    """Insert the participant's letter record, or overwrite the one there (one per participant):
    one upsert statement instead of ``update_or_create``'s transaction, locking read and write."""
    AddressedLetter.objects.bulk_create([letter], update_conflicts=True, unique_fields=["participant"],
                                        update_fields=list(_RECORDED_FIELDS))


def letter_intro(letter: AddressedLetter, instrument: Instrument | None = None) -> str:
    instrument = instrument or get_instrument()
    riding = riding_name(letter.district, letter.language)
    if letter.representative is None:
        return letter_text(instrument, "letter_intro", letter.language, mp_district=riding)
    return letter_text(instrument, "letter_intro_member", letter.language, member=letter.representative.full_name,
                           mp_district=riding)


def letter_page_context(sender: Any, participant: Any, page: Any, language: str, instrument: Instrument,
                        **kwargs: Any) -> dict[str, Any] | None:
    """Receiver of ``survey.signals.page_context``: the letter and its introduction on the page
    flagged ``shows_letter``. Only read: the page is served without a write of ours (the letter is
    recorded when the page is submitted, see :func:`record_letter`)."""
    if not page.shows_letter:
        return None
    letter = compose(participant, language, current_representative(participant.district), instrument)
    addressee = "" if letter.representative is None else str(letter.representative.pk)
    return {"letter": letter, "letter_intro": letter_intro(letter, instrument),
            "hidden_fields": {ADDRESSEE_FIELD: addressee}}


def record_letter(sender: Any, participant: Any, page: Any, language: str, instrument: Instrument,
                  submitted: Mapping[str, str] | None = None, **kwargs: Any) -> None:
    """Receiver of ``survey.signals.page_submitted``: the letter page's letter, addressed as it was
    shown (see :func:`address_letter`), in the participant's language, is recorded as the one signed."""
    if page.shows_letter:
        address_letter(participant, language, instrument, submitted)


def delete_letter_of(sender: Any, participant: Any, **kwargs: Any) -> None:
    """Receiver of ``survey.signals.participant_withdrawn``: a withdrawn participant's letter goes."""
    AddressedLetter.objects.filter(participant=participant).delete()

