"""Respondent-quality flags: each defined once (name, labels, rule in words, rule as a plain function).

The same functions compute the flags recorded as completes accumulate (``services.record_flags``),
the export's ``quality_flags`` / ``excluded`` / ``flag_<name>`` columns, the funnel's counts and
the codebook's wording. Inputs are the raw signals ``survey`` stores as the participant goes
(server page timings, answers, the attention check, the browser cookie, the keyed network hash,
the honeypot): nothing here runs in the participant's browser, and no flag ever stops or tells a
participant.

A typed signature *pasted* rather than typed is not a flag: without JavaScript the server only
sees the submitted text, never how it got into the field, so it cannot be known honestly.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from studyserver.instrument.definition import Instrument, Item, Page


@dataclass(frozen=True)
class Thresholds:
    """The settings the rules read (``QUALITY_*``, see settings.py); one object, passed to every rule."""

    speeding_fraction: float = 0.4
    speeding_min_completes: int = 10
    straight_lining_min_items: int = 5
    reading_words_per_minute: int = 1000
    too_fast_min_pages: int = 3

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            speeding_fraction=settings.QUALITY_SPEEDING_FRACTION,
            speeding_min_completes=settings.QUALITY_SPEEDING_MIN_COMPLETES,
            straight_lining_min_items=settings.QUALITY_STRAIGHT_LINING_MIN_ITEMS,
            reading_words_per_minute=settings.QUALITY_READING_WORDS_PER_MINUTE,
            too_fast_min_pages=settings.QUALITY_TOO_FAST_MIN_PAGES,
        )


@dataclass(frozen=True)
class Flag:
    name: str
    label_en: str
    label_fr: str
    rule: str  # in words, with {placeholders} filled from Thresholds (see describe)

    def describe(self, thresholds: Thresholds | None = None) -> str:
        values = thresholds or Thresholds.from_settings()
        return self.rule.format(percent=round(values.speeding_fraction * 100), min_completes=values.speeding_min_completes,
                                min_items=values.straight_lining_min_items, wpm=values.reading_words_per_minute,
                                min_pages=values.too_fast_min_pages)


SPEEDING, STRAIGHT_LINING, ATTENTION_FAILED = "speeding", "straight_lining", "attention_failed"
DUPLICATE_TAKER, HONEYPOT, TOO_FAST = "duplicate_taker", "honeypot", "too_fast"

FLAGS: tuple[Flag, ...] = (
    Flag(SPEEDING, "Speeder: far faster than the study's median", "Répondant trop rapide par rapport à la médiane",
         "Completed, and either the total time on the questionnaire pages is under {percent} % of the median total "
         "of the study's completes, or more than half of the questionnaire pages took under {percent} % of that "
         "page's median (server time, served to submitted). Judged once the study has {min_completes} completes; "
         "recorded as completes accumulate, final at export (the medians of every complete by then)."),
    Flag(STRAIGHT_LINING, "Straight-liner: the same answer to every item of a battery",
         "Réponses en ligne droite : la même réponse à tous les énoncés d'une batterie",
         "On at least one multi-item page (a page with {min_items} or more scale items in the questionnaire "
         "definition: values, climate, emotions), every scale item was answered with the same option (the same "
         "position on its scale)."),
    Flag(ATTENTION_FAILED, "Failed the pre-treatment attention check", "A échoué la question d'attention (avant traitement)",
         "attention_passed is 0: an instructed-response item before treatment was not answered as instructed."),
    Flag(DUPLICATE_TAKER, "Duplicate taker: a browser or network already seen in the study",
         "Répondant en double : navigateur ou réseau déjà vu dans l'étude",
         "Consented in a browser whose first-party cookie (set at consent) an earlier participant of the study "
         "already carried, or with the same keyed hash (HMAC with the server's secret key) of address + user "
         "agent as an earlier participant, under another panel id. The first participant of a browser or "
         "network is not flagged; every later one is. Addresses are never stored."),
    Flag(HONEYPOT, "Bot trap: filled the hidden field", "Piège à robots : a rempli le champ caché",
         "A questionnaire page came back with its honeypot field filled: the field is off-screen, hidden from "
         "screen readers and out of the keyboard order, so only a script filling every field fills it."),
    Flag(TOO_FAST, "Bot trap: pages faster than anyone reads them", "Piège à robots : pages plus rapides que toute lecture",
         "At least {min_pages} questionnaire pages were submitted faster than their text can be read at "
         "{wpm} words per minute (title, introduction and questions, in the participant's language; server time)."),
)
FLAG_NAMES: tuple[str, ...] = tuple(flag.name for flag in FLAGS)
SEPARATOR = ";"


def join_flags(names: Iterable[str]) -> str:
    """The export's ``quality_flags`` cell: flag names in definition order, ``;``-separated ('' for none)."""
    present = set(names)
    return SEPARATOR.join(name for name in FLAG_NAMES if name in present)


def split_flags(cell: str | None) -> list[str]:
    return [name for name in (cell or "").split(SEPARATOR) if name]


def is_excluded(flags: Iterable[str], rule: Iterable[str]) -> bool:
    """Excluded by the study's (frozen) rule: any of its flags is raised."""
    return bool(set(flags) & set(rule))


# --- what a rule reads of one participant ------------------------------------------------------------------


@dataclass
class Trace:
    """One participant's raw signals, as ``survey`` stored them."""

    participant_id: str
    completed: bool
    language: str = "en"
    province_code: str = ""
    attention_passed: bool | None = None
    honeypot_step: str = ""
    browser_id: str = ""
    network_hash: str = ""
    started_at: datetime | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # questionnaire page -> seconds on it
    answers: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # multi-item page -> its answers


@dataclass(frozen=True)
class Medians:
    """The study's own medians, over its completes: total questionnaire time and each page's time."""

    completes: int = 0
    total: float | None = None
    pages: Mapping[str, float] = field(default_factory=dict)


def questionnaire_steps(instrument: Instrument) -> list[str]:
    """The pages speeding and too_fast time: every questionnaire page (consent, postal code,
    district, the treatment page with its minimum display time and the debrief are not)."""
    return [page.key for page in instrument.pages]


def scale_items(page: Page) -> list[Item]:
    return [item for item in page.items if item.type == "scale"]


# Per questionnaire version (its label is unique): a study's assessment asks the same for every participant.
_PAGES_CACHE: dict[tuple[Any, ...], Any] = {}


def multi_item_pages(instrument: Instrument, min_items: int) -> list[Page]:
    """Pages with at least ``min_items`` scale items, from the questionnaire definition itself."""
    key = ("batteries", instrument.version, min_items)
    if key not in _PAGES_CACHE:
        _PAGES_CACHE[key] = [page for page in instrument.pages if len(scale_items(page)) >= min_items]
    return _PAGES_CACHE[key]


def reading_minimums(instrument: Instrument, language: str, words_per_minute: int) -> dict[str, float]:
    """:func:`reading_seconds` of every page of ``instrument``, by page key."""
    key = ("reading", instrument.version, language, words_per_minute)
    if key not in _PAGES_CACHE:
        _PAGES_CACHE[key] = {page.key: reading_seconds(page, language, words_per_minute) for page in instrument.pages}
    return _PAGES_CACHE[key]


def total_seconds(trace: Trace) -> float:
    return sum(trace.seconds.values())


def study_medians(traces: Iterable[Trace]) -> Medians:
    completes = [trace for trace in traces if trace.completed and trace.seconds]
    if not completes:
        return Medians()
    by_page: dict[str, list[float]] = {}
    for trace in completes:
        for step, seconds in trace.seconds.items():
            by_page.setdefault(step, []).append(seconds)
    return Medians(completes=len(completes), total=statistics.median(total_seconds(t) for t in completes),
                   pages={step: statistics.median(values) for step, values in by_page.items()})


# --- the rules, one plain function each ----------------------------------------------------------------------


def is_speeding(trace: Trace, medians: Medians, thresholds: Thresholds) -> bool:
    if not trace.completed or not trace.seconds or medians.completes < thresholds.speeding_min_completes:
        return False
    fraction = thresholds.speeding_fraction
    if medians.total and total_seconds(trace) < fraction * medians.total:
        return True
    judged = [step for step in trace.seconds if medians.pages.get(step)]
    fast = [step for step in judged if trace.seconds[step] < fraction * medians.pages[step]]
    return bool(judged) and len(fast) > len(judged) / 2


def _position(item: Item, value: Any) -> int | None:
    codes = [option.code for option in item.options]
    return codes.index(value) if value in codes else None


def is_straight_lining(trace: Trace, instrument: Instrument, thresholds: Thresholds) -> bool:
    for page in multi_item_pages(instrument, thresholds.straight_lining_min_items):
        answers = trace.answers.get(page.key)
        if not answers:
            continue
        positions = [_position(item, answers.get(item.code)) for item in scale_items(page) if item.code in answers]
        positions = [position for position in positions if position is not None]
        if len(positions) >= thresholds.straight_lining_min_items and len(set(positions)) == 1:
            return True
    return False


def reading_seconds(page: Page, language: str, words_per_minute: int) -> float:
    """The least time anyone needs to read ``page``: its title, introduction and questions."""
    texts = [page.title.get(language), page.intro.get(language) if page.intro else ""]
    texts += [item.text.get(language) for item in page.items if item.when is None]
    words = sum(len(text.split()) for text in texts)
    return words * 60.0 / words_per_minute


def is_too_fast(trace: Trace, instrument: Instrument, thresholds: Thresholds) -> bool:
    minimums = reading_minimums(instrument, trace.language, thresholds.reading_words_per_minute)
    fast = [step for step, seconds in trace.seconds.items() if step in minimums and seconds < minimums[step]]
    return len(fast) >= thresholds.too_fast_min_pages


def flags_of(trace: Trace, instrument: Instrument, medians: Medians, duplicate: bool,
             thresholds: Thresholds) -> list[str]:
    """Every flag ``trace`` raises, in definition order. ``duplicate``: an earlier participant of the
    study shares its browser or network hash (see :func:`duplicates`)."""
    raised = {
        SPEEDING: is_speeding(trace, medians, thresholds),
        STRAIGHT_LINING: is_straight_lining(trace, instrument, thresholds),
        ATTENTION_FAILED: trace.attention_passed is False,
        DUPLICATE_TAKER: duplicate,
        HONEYPOT: bool(trace.honeypot_step),
        TOO_FAST: is_too_fast(trace, instrument, thresholds),
    }
    return [name for name in FLAG_NAMES if raised[name]]


def duplicates(traces: Sequence[Trace]) -> set[str]:
    """Participants (ids) whose browser id or network hash an earlier participant already had.

    ``traces`` in the order participants entered (``started_at``, then id)."""
    seen_browsers: set[str] = set()
    seen_networks: set[str] = set()
    repeated: set[str] = set()
    for trace in traces:
        if (trace.browser_id and trace.browser_id in seen_browsers) or (
                trace.network_hash and trace.network_hash in seen_networks):
            repeated.add(trace.participant_id)
        if trace.browser_id:
            seen_browsers.add(trace.browser_id)
        if trace.network_hash:
            seen_networks.add(trace.network_hash)
    return repeated
