"""Canadian postal codes: normalization, validation, provinces and the participant-facing messages.

Pure Python (no database), so the survey form, the commands and the benchmark share one definition.
A Canadian postal code is ``A1A 1A1``: letter, digit, letter, space, digit, letter, digit. The
first three characters are the Forward Sortation Area (FSA). Canada Post never uses D, F, I, O, Q
or U (they are easily misread), never starts a code with W or Z, and assigns first letters to
provinces (X is shared by the Northwest Territories and Nunavut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Province / territory codes with their Statistics Canada SGC codes (first two digits of a fed_code).
PROVINCE_SGC_CODES: dict[str, str] = {
    "NL": "10",
    "PE": "11",
    "NS": "12",
    "NB": "13",
    "QC": "24",
    "ON": "35",
    "MB": "46",
    "SK": "47",
    "AB": "48",
    "BC": "59",
    "YT": "60",
    "NT": "61",
    "NU": "62",
}
PROVINCE_BY_SGC_CODE: dict[str, str] = {sgc: code for code, sgc in PROVINCE_SGC_CODES.items()}

PROVINCE_NAMES: dict[str, dict[str, str]] = {
    "NL": {"en": "Newfoundland and Labrador", "fr": "Terre-Neuve-et-Labrador"},
    "PE": {"en": "Prince Edward Island", "fr": "Île-du-Prince-Édouard"},
    "NS": {"en": "Nova Scotia", "fr": "Nouvelle-Écosse"},
    "NB": {"en": "New Brunswick", "fr": "Nouveau-Brunswick"},
    "QC": {"en": "Quebec", "fr": "Québec"},
    "ON": {"en": "Ontario", "fr": "Ontario"},
    "MB": {"en": "Manitoba", "fr": "Manitoba"},
    "SK": {"en": "Saskatchewan", "fr": "Saskatchewan"},
    "AB": {"en": "Alberta", "fr": "Alberta"},
    "BC": {"en": "British Columbia", "fr": "Colombie-Britannique"},
    "YT": {"en": "Yukon", "fr": "Yukon"},
    "NT": {"en": "Northwest Territories", "fr": "Territoires du Nord-Ouest"},
    "NU": {"en": "Nunavut", "fr": "Nunavut"},
}

# First letter of a postal code -> the provinces it may belong to (Canada Post assignment).
PROVINCES_BY_FIRST_LETTER: dict[str, tuple[str, ...]] = {
    "A": ("NL",),
    "B": ("NS",),
    "C": ("PE",),
    "E": ("NB",),
    "G": ("QC",),
    "H": ("QC",),
    "J": ("QC",),
    "K": ("ON",),
    "L": ("ON",),
    "M": ("ON",),
    "N": ("ON",),
    "P": ("ON",),
    "R": ("MB",),
    "S": ("SK",),
    "T": ("AB",),
    "V": ("BC",),
    "X": ("NT", "NU"),
    "Y": ("YT",),
}
LETTERS_NEVER_USED = frozenset("DFIOQU")
LETTERS_NEVER_FIRST = frozenset("WZ")

# Stable error codes (stored with submissions and printed by `locate_postal_code`).
EMPTY = "empty"
BAD_CHARACTERS = "bad_characters"
WRONG_LENGTH = "wrong_length"
BAD_FORMAT = "bad_format"
BAD_LETTER = "bad_letter"
BAD_FIRST_LETTER = "bad_first_letter"
UNKNOWN_FSA = "unknown_fsa"
NOT_CANADIAN = "not_canadian"
UNPLACEABLE = "unplaceable"

# Errors after which the participant simply gets another try (the input was not understood).
RETRY_ERRORS = frozenset({EMPTY, BAD_CHARACTERS, WRONG_LENGTH, BAD_FORMAT, BAD_LETTER, BAD_FIRST_LETTER, UNKNOWN_FSA})
# Errors for a well-understood code that cannot be placed in a Canadian district (screen-out).
SCREEN_OUT_ERRORS = frozenset({NOT_CANADIAN, UNPLACEABLE})

ERROR_MESSAGES: dict[str, dict[str, str]] = {
    EMPTY: {
        "en": "Please enter your postal code.",
        "fr": "Veuillez entrer votre code postal.",
    },
    BAD_CHARACTERS: {
        "en": "A postal code contains only letters and digits (for example K1A 0B1).",
        "fr": "Un code postal ne contient que des lettres et des chiffres (par exemple K1A 0B1).",
    },
    WRONG_LENGTH: {
        "en": "A Canadian postal code has six characters, such as K1A 0B1. Please enter all six.",
        "fr": "Un code postal canadien compte six caractères, par exemple K1A 0B1. "
        "Veuillez les entrer tous les six.",
    },
    BAD_FORMAT: {
        "en": "A Canadian postal code alternates letters and digits: letter, digit, letter, "
        "digit, letter, digit (for example K1A 0B1).",
        "fr": "Un code postal canadien alterne lettres et chiffres : lettre, chiffre, lettre, "
        "chiffre, lettre, chiffre (par exemple K1A 0B1).",
    },
    BAD_LETTER: {
        "en": "Canadian postal codes never contain the letters D, F, I, O, Q or U. "
        "Please check your code (did you type the letter O instead of the digit 0?).",
        "fr": "Les codes postaux canadiens ne contiennent jamais les lettres D, F, I, O, Q ou U. "
        "Veuillez vérifier votre code (avez-vous tapé la lettre O au lieu du chiffre 0 ?).",
    },
    BAD_FIRST_LETTER: {
        "en": "No Canadian postal code starts with W or Z. Please check the first letter.",
        "fr": "Aucun code postal canadien ne commence par W ou Z. Veuillez vérifier la première lettre.",
    },
    UNKNOWN_FSA: {
        "en": "We do not recognize the first three characters of this postal code. "
        "Please check them and try again.",
        "fr": "Nous ne reconnaissons pas les trois premiers caractères de ce code postal. "
        "Veuillez les vérifier et réessayer.",
    },
    NOT_CANADIAN: {
        "en": "This looks like a postal code from outside Canada (for example a US ZIP code). "
        "This study is open only to people living in Canada.",
        "fr": "Ce code semble provenir de l'extérieur du Canada (par exemple un code ZIP américain). "
        "Cette étude est réservée aux personnes qui habitent au Canada.",
    },
    UNPLACEABLE: {
        "en": "This postal code cannot be placed in a Canadian electoral district, "
        "so we cannot continue with this study.",
        "fr": "Ce code postal ne peut être associé à aucune circonscription canadienne ; "
        "nous ne pouvons donc pas poursuivre l'étude.",
    },
}

_US_ZIP = re.compile(r"^\d{5}(\d{4})?$")
_SEPARATORS = re.compile(r"[\s\-]+")
_SHAPE = re.compile(r"^[A-Z]\d[A-Z]\d[A-Z]\d$")


@dataclass(frozen=True)
class PostalCheck:
    """The syntactic verdict on one input (no database involved)."""

    input: str
    normalized: str | None  # "A1A 1A1" when well-formed
    error: str | None  # one of the codes above; None when well-formed
    fsa: str | None
    provinces: tuple[str, ...]  # provinces allowed by the first letter

    @property
    def well_formed(self) -> bool:
        return self.error is None


def normalize_postal_code(raw: str | None) -> PostalCheck:
    """Normalize (case, spaces, a hyphen) and validate a postal code's shape and letters."""
    text = "" if raw is None else str(raw)
    compact = _SEPARATORS.sub("", text).upper()
    if not compact:
        return PostalCheck(text, None, EMPTY, None, ())
    if _US_ZIP.match(compact):
        # 5 digits (or ZIP+4): a US ZIP code; Canadian codes always contain letters.
        return PostalCheck(text, None, NOT_CANADIAN, None, ())
    if not compact.isascii() or not compact.isalnum():
        return PostalCheck(text, None, BAD_CHARACTERS, None, ())
    if len(compact) != 6:
        return PostalCheck(text, None, WRONG_LENGTH, None, ())
    if not _SHAPE.match(compact):
        return PostalCheck(text, None, BAD_FORMAT, None, ())
    if LETTERS_NEVER_USED.intersection(compact):
        return PostalCheck(text, None, BAD_LETTER, None, ())
    if compact[0] in LETTERS_NEVER_FIRST:
        return PostalCheck(text, None, BAD_FIRST_LETTER, None, ())
    provinces = PROVINCES_BY_FIRST_LETTER.get(compact[0], ())
    if not provinces:  # unreachable with the rules above; kept so a new rule cannot slip through
        return PostalCheck(text, None, BAD_FIRST_LETTER, None, ())
    return PostalCheck(text, f"{compact[:3]} {compact[3:]}", None, compact[:3], provinces)


def provinces_for_fsa(fsa: str) -> tuple[str, ...]:
    """Provinces a (well-formed) FSA may belong to, from its first letter."""
    return PROVINCES_BY_FIRST_LETTER.get(fsa[:1].upper(), ())


def is_rural_fsa(fsa: str) -> bool:
    """A 0 as second character marks a rural FSA (large area served by rural routes)."""
    return len(fsa) >= 2 and fsa[1] == "0"


def error_message(error: str, language: str) -> str:
    messages = ERROR_MESSAGES.get(error)
    if messages is None:
        raise KeyError(f"unknown postal code error {error!r}")
    return messages["fr" if language.lower().startswith("fr") else "en"]
