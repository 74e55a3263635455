"""System check: the instrument has every text the letters need, with the placeholders filled in."""

from __future__ import annotations

from string import Formatter

from django.core.checks import Error, register

from studyserver.instrument.definition import InstrumentError, get_instrument


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


@register()
def letter_texts_are_complete(app_configs, **kwargs):  # noqa: ARG001 - Django's check signature
    from .addressing import REQUIRED_TEXTS

    try:
        instrument = get_instrument()
    except (InstrumentError, OSError):
        return []  # reported by the instrument's own check
    errors = []
    for key, expected in REQUIRED_TEXTS.items():
        text = instrument.texts.get(key)
        if text is None:
            errors.append(Error(f"instrument text {key!r} is missing (the letter to the MP needs it)",
                                id="letters.E001"))
            continue
        for language in ("en", "fr"):
            unknown = _placeholders(text.get(language)) - expected
            if unknown:
                errors.append(Error(
                    f"instrument text {key!r} ({language}) uses {sorted(unknown)}; "
                    f"only {sorted(expected)} are filled in", id="letters.E002"))
    letter_placeholders = _placeholders(instrument.letter.en) | _placeholders(instrument.letter.fr)
    if letter_placeholders:
        errors.append(Error(f"the letter body uses {sorted(letter_placeholders)}; the member and the "
                            "riding go in texts.letter_opening_*", id="letters.E002"))
    return errors
