"""The questionnaire definition: loaded once from YAML into immutable dataclasses.

This is the one source of truth for items, their bilingual wording, response options with
numeric codes, requiredness, page grouping and display conditions. Forms, validation, storage,
exports, the codebook and the analysis' variable names all read it; nothing else lists items.
A deployment stores several versions (``models.InstrumentVersion``): each study points to one and
each participant keeps theirs; a parse is cached in-process by the text's content hash.
"""

from __future__ import annotations

import hashlib
import re
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("en", "fr")
ITEM_TYPES = {"integer", "choice", "scale", "yesno", "checkbox", "email", "text"}
PHASES = {"pre", "post"}
# What the platform does with a page or an item beyond showing it and storing its answers: the
# definition says it with ``role:``, no code names a page key or an item code.
INFORMATION_EMAIL = "information_email"  # a page: where the information e-mails asked for go (queued when submitted)
SIGNATURE = "signature"  # an item: the box that signs the letter (a checkbox on the letter page, with its name item)
PAGE_ROLES = frozenset({INFORMATION_EMAIL})
ITEM_ROLES = frozenset({SIGNATURE})
# Definitions written before ``role:`` existed (stored versions are never edited) relied on these
# keys: there, and only where the definition flags no page or item of that role, they still mean it.
LEGACY_PAGE_ROLES = {"info_email": INFORMATION_EMAIL}
LEGACY_ITEM_ROLES = {"letter_signed": SIGNATURE}
# The personal-data field the signer's typed name is stored in (``personal: signature_name``).
SIGNATURE_NAME_FIELD = "signature_name"
# Texts the fixed pages and the page furniture read: a version without one of them could not be
# shown, so it is refused when loaded (a version may add texts of its own).
REQUIRED_TEXTS: tuple[str, ...] = (
    "study_title", "continue", "language_switch", "progress", "error_summary_title", "error_required",
    "error_invalid_choice", "error_integer", "error_email", "error_too_long", "error_signature",
    "optional", "consent_title", "consent_body", "consent_age", "consent_agree", "consent_decline",
    "consent_age_required", "declined_title", "declined_body", "postal_title", "postal_label",
    "postal_hint", "district_title", "district_label", "district_none", "district_province_label",
    "treatment_title", "treatment_caption", "treatment_wait", "treatment_too_early", "treatment_alt",
    "letter_intro", "debrief_title", "debrief_body", "debrief_finish", "screenout_title",
    "screenout_body", "already_done_title", "already_done_body", "locked_notice",
    "already_saved_notice", "study_closed_title", "study_closed_body", "missing_pid_title",
    "missing_pid_body", "bad_request_title", "bad_request_body", "forbidden_title", "forbidden_body",
    "csrf_body", "back_to_study", "image_missing_title", "image_missing_body",
    # the letter to the MP (studyserver.letters fills these in)
    "letter_intro_member", "letter_opening_ms", "letter_opening_mr", "letter_opening_member",
    "letter_opening_riding", "letter_signed_line",
    # fielding: the declined exit and the debrief for each arm
    "return_to_panel", "debrief_arm_control", "debrief_arm_distant", "debrief_arm_generated",
    # the district picker's help (places near the participant, share of the postal area, the map)
    "district_near", "district_share", "district_map_title", "district_map_desc", "district_map_caption",
)


class InstrumentError(ValueError):
    """The definition file is malformed; the message lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


@dataclass(frozen=True)
class Text:
    en: str
    fr: str

    def get(self, language: str) -> str:
        return self.fr if language == "fr" else self.en


@dataclass(frozen=True)
class Condition:
    """When a page, item or option is shown.

    ``item``/``values``: shown when an earlier answer is one of ``values``;
    ``province_in``/``province_not_in``: by the participant's province; ``any``: one of several.
    """

    item: str | None = None
    values: tuple[int, ...] = ()
    province_in: tuple[str, ...] = ()
    province_not_in: tuple[str, ...] = ()
    any_of: tuple[Condition, ...] = ()

    def holds(self, answers: Mapping[str, Any], province_code: str | None) -> bool:
        if self.any_of:
            return any(cond.holds(answers, province_code) for cond in self.any_of)
        if self.item is not None and answers.get(self.item) not in self.values:
            return False
        if self.province_in and province_code not in self.province_in:
            return False
        return not (self.province_not_in and province_code in self.province_not_in)

    def referenced_items(self) -> set[str]:
        names = {self.item} if self.item else set()
        for cond in self.any_of:
            names |= cond.referenced_items()
        return names


@dataclass(frozen=True)
class Option:
    code: int
    text: Text
    when: Condition | None = None


@dataclass(frozen=True)
class Item:
    code: str
    type: str
    text: Text
    label: Text
    page: str
    phase: str
    options: tuple[Option, ...] = ()
    required: bool = True
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = 254
    when: Condition | None = None
    personal_field: str | None = None
    attention_correct: int | None = None
    role: str | None = None  # one of ITEM_ROLES

    @property
    def is_personal(self) -> bool:
        return self.personal_field is not None

    def visible(self, answers: Mapping[str, Any], province_code: str | None) -> bool:
        return self.when is None or self.when.holds(answers, province_code)

    def options_for(self, province_code: str | None) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.when is None or o.when.holds({}, province_code))

    def value_labels(self, language: str = "en") -> dict[int, str]:
        return {o.code: o.text.get(language) for o in self.options}


@dataclass(frozen=True)
class Page:
    key: str
    phase: str
    title: Text
    items: tuple[Item, ...]
    intro: Text | None = None
    when: Condition | None = None
    shows_letter: bool = False
    role: str | None = None  # one of PAGE_ROLES

    def visible(self, answers: Mapping[str, Any], province_code: str | None) -> bool:
        return self.when is None or self.when.holds(answers, province_code)

    @property
    def signature(self) -> Item | None:
        """The item that signs the letter on this page (``role: signature``), if any."""
        return next((item for item in self.items if item.role == SIGNATURE), None)

    @property
    def signature_name(self) -> Item | None:
        """The item where the signer types their name (``personal: signature_name``), if any."""
        return next((item for item in self.items if item.personal_field == SIGNATURE_NAME_FIELD), None)


@dataclass(frozen=True)
class Instrument:
    version: str
    consent_version: str
    pages: tuple[Page, ...]
    texts: Mapping[str, Text]
    letter: Text
    information_emails: Mapping[str, tuple[Text, Text]] = field(default_factory=dict)

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(item for page in self.pages for item in page.items)

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def page(self, key: str) -> Page:
        for page in self.pages:
            if page.key == key:
                return page
        raise KeyError(key)

    def pages_in_phase(self, phase: str) -> tuple[Page, ...]:
        return tuple(p for p in self.pages if p.phase == phase)

    def text(self, key: str, language: str, **values: Any) -> str:
        template = self.texts[key].get(language)
        return template.format(**values) if values else template

    @property
    def answer_codes(self) -> tuple[str, ...]:
        """Variable names of the non-personal answers, in questionnaire order."""
        return tuple(item.code for item in self.items if not item.is_personal)

    @property
    def attention_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.attention_correct is not None)

    @property
    def signature_item(self) -> Item | None:
        """The item that signs the letter to the MP (``role: signature``), if the questionnaire has one."""
        return next((item for item in self.items if item.role == SIGNATURE), None)


# --- parsing -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def text(self, raw: Any, where: str) -> Text:
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: expected a mapping with 'en' and 'fr', got {_kind(raw)}")
            return Text("", "")
        values: dict[str, str] = {}
        for language in LANGUAGES:
            value = raw.get(language)
            # Only scalars become text: a list or mapping is refused, never stringified (its
            # text could be any size, and it is not wording anyone wrote).
            if isinstance(value, str):
                values[language] = value.strip()
            elif isinstance(value, int | float) and not isinstance(value, bool):
                values[language] = str(value)
            else:
                values[language] = ""
                if value is not None and not isinstance(value, str):
                    self.problems.append(f"{where}: the {language!r} text must be text, got {_kind(value)}")
                    continue
            if not values[language]:
                self.problems.append(f"{where}: missing {language!r} text (English and French must be kept in parity)")
        return Text(values["en"], values["fr"])

    def condition(self, raw: Any, where: str) -> Condition | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: a condition must be a mapping")
            return None
        unknown = set(raw) - {"item", "in", "province_in", "province_not_in", "any"}
        if unknown:
            self.problems.append(f"{where}: unknown condition keys {sorted(unknown)}")
        return Condition(
            item=raw.get("item"),
            values=tuple(raw.get("in", ())),
            province_in=tuple(raw.get("province_in", ())),
            province_not_in=tuple(raw.get("province_not_in", ())),
            any_of=tuple(
                c for i, sub in enumerate(raw.get("any", ())) if (c := self.condition(sub, f"{where}.any[{i}]"))
            ),
        )

    def options(self, raw: Any, option_sets: Mapping[str, Any], where: str) -> tuple[Option, ...]:
        if isinstance(raw, str):
            if raw not in option_sets:
                self.problems.append(f"{where}: unknown option set {raw!r}")
                return ()
            raw = option_sets[raw]
        options = []
        for i, entry in enumerate(raw or ()):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("code"), int):
                self.problems.append(f"{where}[{i}]: an option needs an integer 'code'")
                continue
            options.append(
                Option(
                    code=entry["code"],
                    text=self.text(entry, f"{where}[{i}]"),
                    when=self.condition(entry.get("when"), f"{where}[{i}].when"),
                )
            )
        codes = [o.code for o in options]
        if len(codes) != len(set(codes)):
            self.problems.append(f"{where}: duplicate option codes {codes}")
        return tuple(options)

    def item(self, raw: Mapping[str, Any], page: str, phase: str, option_sets: Mapping[str, Any]) -> Item:
        code = _scalar(raw.get("code"))
        where = f"item {code or '?'} (page {page})"
        if not code.isidentifier() or code.lower() != code:
            self.problems.append(f"{where}: codes must be lower-case identifiers")
        item_type = raw.get("type")
        if item_type not in ITEM_TYPES:
            self.problems.append(f"{where}: type must be one of {sorted(ITEM_TYPES)}")
        options = self.options(raw.get("options"), option_sets, f"{where}.options")
        if item_type in {"choice", "scale", "yesno"} and not options:
            self.problems.append(f"{where}: a {item_type} item needs options")
        if item_type == "integer" and (raw.get("min") is None or raw.get("max") is None):
            self.problems.append(f"{where}: an integer item needs 'min' and 'max'")
        attention = raw.get("attention") or {}
        if not isinstance(attention, Mapping):
            self.problems.append(f"{where}: 'attention' must be a mapping with 'correct'")
            attention = {}
        max_length = raw.get("max_length", 254)
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            self.problems.append(f"{where}: max_length must be a positive whole number, got {_kind(max_length)}")
            max_length = 254
        return Item(
            code=code,
            type=str(item_type),
            text=self.text(raw.get("text"), f"{where}.text"),
            label=self.text(raw.get("label"), f"{where}.label"),
            page=page,
            phase=phase,
            options=options,
            required=bool(raw.get("required", True)),
            min_value=raw.get("min"),
            max_value=raw.get("max"),
            max_length=max_length,
            when=self.condition(raw.get("when"), f"{where}.when"),
            personal_field=raw.get("personal"),
            attention_correct=attention.get("correct"),
            role=self.role(raw.get("role"), ITEM_ROLES, where),
        )

    def role(self, raw: Any, allowed: frozenset[str], where: str) -> str | None:
        if raw is None:
            return None
        if raw not in allowed:
            self.problems.append(f"{where}: role must be one of {sorted(allowed)}, got {_kind(raw)}")
            return None
        return str(raw)


def parse_instrument(document: Mapping[str, Any]) -> Instrument:
    """Build an :class:`Instrument` from the parsed YAML, or raise listing every problem."""
    parser = _Parser()
    option_sets = document.get("option_sets", {}) or {}
    pages: list[Page] = []
    seen_codes: set[str] = set()
    raw_pages = document.get("pages", ()) or ()
    if not isinstance(option_sets, Mapping):
        parser.problems.append("option_sets: must be a mapping of named option lists")
        option_sets = {}
    if not isinstance(raw_pages, list) or not all(isinstance(raw, Mapping) for raw in raw_pages):
        parser.problems.append("pages: must be a list of pages (each a mapping with key, phase, title, items)")
        raw_pages = [raw for raw in raw_pages if isinstance(raw, Mapping)] if isinstance(raw_pages, list) else []
    for raw_page in raw_pages:
        key = _scalar(raw_page.get("key"))
        phase = _scalar(raw_page.get("phase"))
        if phase not in PHASES:
            parser.problems.append(f"page {key}: phase must be 'pre' or 'post'")
        raw_items = raw_page.get("items", ()) or ()
        if not isinstance(raw_items, list) or not all(isinstance(raw, Mapping) for raw in raw_items):
            parser.problems.append(f"page {key}: items must be a list of items (each a mapping)")
            raw_items = [raw for raw in raw_items if isinstance(raw, Mapping)] if isinstance(raw_items, list) else []
        items = tuple(parser.item(raw, key, phase, option_sets) for raw in raw_items)
        page_condition = parser.condition(raw_page.get("when"), f"page {key}.when")
        for item in items:
            for name in (item.when.referenced_items() if item.when else set()):
                if name not in seen_codes:
                    parser.problems.append(f"item {item.code}: its condition refers to {name!r}, not asked on an earlier page")
        for name in page_condition.referenced_items() if page_condition else set():
            if name not in seen_codes:
                parser.problems.append(f"page {key}: its condition refers to {name!r}, not asked on an earlier page")
        for item in items:
            if item.code in seen_codes:
                parser.problems.append(f"item {item.code}: code used twice")
            seen_codes.add(item.code)
        pages.append(
            Page(
                key=key,
                phase=str(phase),
                title=parser.text(raw_page.get("title"), f"page {key}.title"),
                items=items,
                intro=parser.text(raw_page["intro"], f"page {key}.intro") if raw_page.get("intro") else None,
                when=page_condition,
                shows_letter=bool(raw_page.get("letter", False)),
                role=parser.role(raw_page.get("role"), PAGE_ROLES, f"page {key}"),
            )
        )
    _check_roles(pages, parser)  # as written: a legacy key keeps doing what it did, unchecked as before
    pages = _with_legacy_roles(pages)
    keys = [p.key for p in pages]
    if len(keys) != len(set(keys)):
        parser.problems.append(f"page keys must be unique: {keys}")
    phases = [p.phase for p in pages]
    if "post" in phases and "pre" in phases[phases.index("post") :]:
        parser.problems.append("all pre-treatment pages must come before the post-treatment pages")
    texts = {key: parser.text(raw, f"texts.{key}") for key, raw in _section(document, "texts", parser).items()}
    for key in REQUIRED_TEXTS:
        if key not in texts:
            parser.problems.append(f"texts.{key}: missing (the participant pages need it)")
    for key, text in texts.items():
        english, french = len(paragraphs(text.en)), len(paragraphs(text.fr))
        if english != french:
            # The consent and debrief are read paragraph by paragraph (one per line): a paragraph
            # missing in one language is a promise, or a resource, that the other readers miss.
            parser.problems.append(
                f"texts.{key}: the English text has {english} paragraph(s) and the French {french}: "
                "both languages must say the same, paragraph for paragraph"
            )
        if _placeholders(text.en) != _placeholders(text.fr):
            parser.problems.append(
                f"texts.{key}: the English and French texts must use the same {{placeholders}} "
                f"(en {sorted(_placeholders(text.en))}, fr {sorted(_placeholders(text.fr))})"
            )
    emails: dict[str, tuple[Text, Text]] = {}
    for code, raw in _section(document, "information_emails", parser).items():
        if not isinstance(raw, Mapping):
            parser.problems.append(f"information_emails.{code}: must be a mapping with 'subject' and 'body'")
            continue
        emails[code] = (parser.text(raw.get("subject"), f"information_emails.{code}.subject"),
                        parser.text(raw.get("body"), f"information_emails.{code}.body"))
    for code in emails:
        if code not in seen_codes:
            parser.problems.append(f"information_emails.{code}: no such item")
    instrument = Instrument(
        version=_scalar(document.get("version")),
        consent_version=_scalar(document.get("consent_version")),
        pages=tuple(pages),
        texts=texts,
        letter=parser.text(document.get("letter"), "letter"),
        information_emails=emails,
    )
    if not instrument.version:
        parser.problems.append("the instrument needs a 'version'")
    if parser.problems:
        raise InstrumentError(_summary(parser.problems), parser.problems)
    return instrument


def _with_legacy_roles(pages: list[Page]) -> list[Page]:
    """``pages`` with the roles a definition written before ``role:`` meant by its keys (see
    LEGACY_PAGE_ROLES); a definition that flags a role itself is taken as it is written."""
    if not any(page.role for page in pages):
        pages = [replace(page, role=LEGACY_PAGE_ROLES.get(page.key)) for page in pages]
    if not any(item.role for page in pages for item in page.items):
        pages = [replace(page, items=tuple(replace(item, role=LEGACY_ITEM_ROLES.get(item.code)) for item in page.items))
                 for page in pages]
    return pages


def _check_roles(pages: list[Page], parser: _Parser) -> None:
    """A role is where the platform acts on a page or an item: each needs what that action uses."""
    email_pages = [page.key for page in pages if page.role == INFORMATION_EMAIL]
    if len(email_pages) > 1:
        parser.problems.append(f"pages {email_pages}: only one page may have role {INFORMATION_EMAIL!r}")
    for page in pages:
        if page.role == INFORMATION_EMAIL and not any(item.personal_field == "email" for item in page.items):
            parser.problems.append(f"page {page.key}: a page with role {INFORMATION_EMAIL!r} asks for the "
                                   "address: it needs an item with 'personal: email'")
    signatures = [item for page in pages for item in page.items if item.role == SIGNATURE]
    if len(signatures) > 1:
        parser.problems.append(f"items {[item.code for item in signatures]}: only one item may have role {SIGNATURE!r}")
    for item in signatures:
        page = next(page for page in pages if page.key == item.page)
        if item.type != "checkbox" or not page.shows_letter or page.signature_name is None:
            parser.problems.append(
                f"item {item.code}: the item with role {SIGNATURE!r} is a checkbox on the page that shows the "
                f"letter ('letter: true'), beside an item with 'personal: {SIGNATURE_NAME_FIELD}'")


def _section(document: Mapping[str, Any], name: str, parser: _Parser) -> Mapping[str, Any]:
    """A top-level mapping (texts, information_emails); anything else is a problem, read as empty."""
    value = document.get(name) or {}
    if not isinstance(value, Mapping):
        parser.problems.append(f"{name}: must be a mapping, got {_kind(value)}")
        return {}
    return value


def _scalar(value: Any) -> str:
    """A code, key or version label: text or a number as written; anything else is no label."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _kind(value: Any) -> str:
    """A value named for a message: short scalars as they are, anything else by its type."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else f"{text[:57]}…"
    return f"a {'list' if isinstance(value, list) else 'mapping' if isinstance(value, Mapping) else type(value).__name__}"


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a page text: one per non-blank line (how the consent and debrief pages show them)."""
    return [line for line in text.split("\n") if line.strip()]


def _summary(problems: list[str]) -> str:
    return "Instrument definition has problems:\n- " + "\n- ".join(problems)


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:  # an unbalanced brace: reported as its own placeholder set
        return {"<unbalanced braces>"}


# --- source text: line numbers, content hash, in-process cache ------------------------------------

_WHERE = re.compile(r"^(?:item (?P<item>\w+)|page (?P<page>\w+)|(?P<section>texts|information_emails)\.(?P<key>\w+)"
                    r"|(?P<top>letter|version|option_sets))")


def _line_index(root: yaml.Node | None) -> dict[tuple[str, str], int]:
    """Where items, pages and top-level entries start in the file (1-based lines)."""
    index: dict[tuple[str, str], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return index
    for key_node, value_node in root.value:
        top = getattr(key_node, "value", "")
        index[("top", top)] = key_node.start_mark.line + 1
        if top in {"texts", "information_emails"} and isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                index[(top, sub_key.value)] = sub_key.start_mark.line + 1
        if top == "pages" and isinstance(value_node, yaml.SequenceNode):
            for page in value_node.value:
                if not isinstance(page, yaml.MappingNode):
                    continue
                for page_key, page_value in page.value:
                    if page_key.value == "key" and isinstance(page_value, yaml.ScalarNode):
                        index.setdefault(("page", page_value.value), page.start_mark.line + 1)
                    if page_key.value == "items" and isinstance(page_value, yaml.SequenceNode):
                        for item in page_value.value:
                            for item_key, item_value in getattr(item, "value", ()):
                                if item_key.value == "code" and isinstance(item_value, yaml.ScalarNode):
                                    index.setdefault(("item", item_value.value), item.start_mark.line + 1)
    return index


def _with_line(problem: str, index: Mapping[tuple[str, str], int]) -> str:
    match = _WHERE.match(problem)
    line = None
    if match:
        if match["item"]:
            line = index.get(("item", match["item"]))
        elif match["page"]:
            line = index.get(("page", match["page"]))
        elif match["section"]:
            line = index.get((match["section"], match["key"])) or index.get(("top", match["section"]))
        else:
            line = index.get(("top", match["top"]))
    return f"line {line}: {problem}" if line else problem


# A questionnaire is a few hundred nodes in a few tens of kilobytes (the sample: 44 KB, ≈2,600
# nodes). The limits leave ample room and keep a hostile upload from tying up a worker: the text is
# refused before parsing when too long, and composing stops at the first anchor or alias (a
# questionnaire needs none; chained aliases expand exponentially) or past the node budget.
MAX_DEFINITION_BYTES = 1024 * 1024
MAX_DEFINITION_NODES = 100_000


class _QuestionnaireLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases and counting nodes as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.node_count = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not accepted in a questionnaire: "
                "write each text out", event.start_mark)
        self.node_count += 1
        if self.node_count > MAX_DEFINITION_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_DEFINITION_NODES:,} values: not a questionnaire", event.start_mark)
        return super().compose_node(parent, index)


def _load_yaml(source: str) -> tuple[yaml.Node | None, Any]:
    """(node tree, document) of ``source``, composed once; raises ``yaml.YAMLError``."""
    loader = _QuestionnaireLoader(source)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def parse_instrument_text(source: str, name: str = "instrument") -> Instrument:
    """Parse YAML text into an :class:`Instrument`; every problem names its item and its line."""
    problem = too_large_problem(len(source.encode("utf-8")), name)
    if problem:
        raise InstrumentError(_summary([problem]), [problem])
    try:
        root, document = _load_yaml(source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = f"{where}{name} is not valid YAML ({getattr(error, 'problem', None) or error})"
        raise InstrumentError(_summary([problem]), [problem]) from None
    if not isinstance(document, Mapping):
        problem = f"{name}: the file must contain a mapping (version, pages, texts …) at top level"
        raise InstrumentError(_summary([problem]), [problem])
    try:
        return parse_instrument(document)
    except InstrumentError as error:
        index = _line_index(root)
        problems = [_with_line(problem, index) for problem in error.problems]
        raise InstrumentError(_summary(problems), problems) from None


def content_hash(source: str) -> str:
    """The identity of a stored version: SHA-256 of its exact text."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


_PARSED: dict[str, Instrument] = {}
_PARSED_LOCK = threading.Lock()


def instrument_from_source(source: str, digest: str | None = None) -> Instrument:
    """The parsed instrument of ``source``, parsed once per process per content hash.

    Versions are immutable, so the hash identifies the parse for good: participant pages never
    re-parse YAML. The cache holds one entry per version in use (a handful).
    """
    digest = digest or content_hash(source)
    cached = _PARSED.get(digest)
    if cached is None:
        cached = parse_instrument_text(source)
        with _PARSED_LOCK:
            _PARSED[digest] = cached
    return cached


def cached_instrument(digest: str) -> Instrument | None:
    """The instrument already parsed in this process for ``digest``, if any."""
    return _PARSED.get(digest)


_FILES: dict[tuple[str, int, int], str] = {}


def too_large_problem(size: int, name: str) -> str | None:
    """Why a definition of ``size`` bytes is refused unread (None when it may be read)."""
    if size <= MAX_DEFINITION_BYTES:
        return None
    return f"{name} is {size / 1024:,.0f} KB: a questionnaire is at most {MAX_DEFINITION_BYTES // 1024:,} KB"


def read_definition_file(path: str | Path) -> str:
    """The text of a definition file, refused (:class:`InstrumentError`) before reading when too large."""
    resolved = Path(path)
    problem = too_large_problem(resolved.stat().st_size, resolved.name)
    if problem:
        raise InstrumentError(_summary([problem]), [problem])
    return resolved.read_text(encoding="utf-8")


def read_definition(path: str | Path) -> tuple[str, str]:
    """(text, content hash) of the file at ``path``; re-read only when the file changes."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    source = read_definition_file(resolved)
    digest = _FILES.get(key) or content_hash(source)
    _FILES[key] = digest
    return source, digest


def load_instrument(path: str | Path) -> Instrument:
    """Load (and cache until the file changes) the instrument at ``path``."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    digest = _FILES.get((str(resolved), stat.st_mtime_ns, stat.st_size))
    if digest is not None and digest in _PARSED:
        return _PARSED[digest]
    source, digest = read_definition(resolved)
    return instrument_from_source(source, digest)


def get_instrument() -> Instrument:
    """The default instrument, configured by ``settings.FLOODLIGHT_INSTRUMENT``.

    New studies start from it; anything about a participant or a study reads that study's or
    participant's own version instead (``study.instrument``, ``participant.instrument``).
    """
    from django.conf import settings

    return load_instrument(settings.FLOODLIGHT_INSTRUMENT)
