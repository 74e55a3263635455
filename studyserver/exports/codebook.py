"""The codebook: one row per export column, generated from the instrument definition.

The same definition renders the forms, so the codebook cannot drift from what participants saw.
A study that spans questionnaire versions gets one row per variable and distinct definition: a
variable worded and coded alike in every version is one row; one whose codes or wording changed
has a row per definition, its ``versions`` column naming the versions it applies to (match it to
the export's ``instrument_version``). Meta variables (funnel state, arm, district, timings, image provenance) are documented here too,
with phase ``meta``; their wording lives in this module because they are not questions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from studyserver.instrument.definition import Instrument, Item, Page, Text, get_instrument
from studyserver.quality.flags import FLAGS, SEPARATOR

from . import export as export_columns

POST_TREATMENT_NOTE = (
    "Measured AFTER treatment: a post-treatment moderator. Conditioning on it can bias effect "
    "estimates; never exclude or stratify on it."
)
EMOTION_NOTE = (
    "Emotion felt about climate change, measured AFTER treatment (post-treatment moderator, H2c): "
    "it may itself be affected by the image; interpret moderation by it with care."
)
PERSONAL_NOTE = "Personal data: exported only on explicit request by a permitted user (logged)."
TEXT_CELLS_NOTE = (
    "Text typed by participants or panels (panel id, signature, e-mail, ...) can start like a "
    "spreadsheet formula. In CSV files (downloads and the API) a text value starting with = + - @, "
    "a tab or a carriage return is written with a leading apostrophe ('=1+2 for =1+2), which "
    "spreadsheets show as text; remove it before matching such values elsewhere. In .xlsx every "
    "text is a text cell (never a formula), unchanged; .dta, .parquet and JSON are unchanged."
)


@dataclass(frozen=True)
class CodebookRow:
    variable: str
    label_en: str
    label_fr: str
    question_en: str
    question_fr: str
    codes: str
    value_labels_en: str
    value_labels_fr: str
    type: str
    page: str
    phase: str
    notes: str
    versions: str = ""


CODEBOOK_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CodebookRow))

# (variable, label EN, label FR, type, notes). Codes of the categorical ones come from the models.
_META: dict[str, tuple[str, str, str, str]] = {
    "participant_id": ("Participant id (random, not the panel id)", "Identifiant du participant (aléatoire, pas l'identifiant du panel)", "text", "Random UUID; cannot be linked to the panel without the personal data."),
    "state": ("Funnel state where the participant stopped", "Étape du parcours où le participant s'est arrêté", "text", "started/consented/placed/assigned/exposed: stopped there (abandoned or still in progress); withdrawn rows keep only the arm slot."),
    "screenout_reason": ("Screen-out reason", "Motif d'exclusion", "text", "Empty unless state is screened_out. out_of_scope: district outside the study's scope; material_missing: an arm's image missing (screenout_detail names the arms)."),
    "screenout_detail": ("What the screen-out was about", "Objet de l'exclusion", "text", "The arms without an approved image, or the district outside the scope."),
    "language": ("Language of the survey", "Langue du questionnaire", "text", "en or fr."),
    "arm": ("Experimental arm", "Groupe expérimental", "text", "control, distant, house, district_landmark, provincial_landmark; empty if never assigned."),
    "stratum": ("Randomization stratum", "Strate de randomisation", "text", "Province by default."),
    "sequence_position": ("Position in the stratum's allocation sequence", "Position dans la séquence d'allocation de la strate", "integer", "Abandoned slots are never refilled."),
    "province_code": ("Province (2-letter code)", "Province (code à 2 lettres)", "text", ""),
    "fsa": ("Forward sortation area (first 3 characters of the postal code)", "Région de tri d'acheminement (3 premiers caractères du code postal)", "text", "The full postal code is personal data and is not exported by default."),
    "fed_code": ("Federal electoral district code", "Code de la circonscription fédérale", "text", ""),
    "district_name_en": ("Federal electoral district name", "Nom de la circonscription fédérale", "text", ""),
    "district_method": ("How the district was determined", "Comment la circonscription a été déterminée", "text", "certain, picked, fallback, snapped."),
    "rep_order": ("Representation order of the district", "Décret de représentation de la circonscription", "text", "2013 or 2023."),
    "consent_version": ("Consent text version seen", "Version du formulaire de consentement vue", "text", ""),
    "instrument_version": ("Questionnaire version", "Version du questionnaire", "text", ""),
    "started_at": ("Entered the survey (UTC)", "Entrée dans le questionnaire (UTC)", "datetime", ""),
    "consented_at": ("Gave consent (UTC)", "Consentement donné (UTC)", "datetime", ""),
    "assigned_at": ("Assigned to an arm (UTC)", "Assignation à un groupe (UTC)", "datetime", ""),
    "exposed_at": ("Submitted the treatment page (UTC)", "Page de traitement soumise (UTC)", "datetime", "Empty for control (no treatment page)."),
    "completed_at": ("Completed the survey (UTC)", "Questionnaire terminé (UTC)", "datetime", ""),
    "exposure_ms": ("Treatment page time, served to submitted (ms)", "Temps sur la page de traitement, de l'envoi à la soumission (ms)", "integer", "Measured on the server. Missing (not zero) for control."),
    "image_visible_ms": ("Image time, image bytes served to submitted (ms)", "Temps de l'image, de l'envoi de l'image à la soumission (ms)", "integer", "Measured on the server. Missing for control."),
    "stimulus_id": ("Treatment image id", "Identifiant de l'image de traitement", "text", "Public id of the approved image shown; empty for control."),
    "generator_backend": ("Image generator backend", "Moteur de génération de l'image", "text", "Provenance of the image shown."),
    "model_version": ("Image generator model version", "Version du modèle de génération de l'image", "text", "Provenance of the image shown."),
    "attention_passed": ("Passed the pre-treatment attention check", "A réussi la question d'attention (avant traitement)", "yesno", "Measured before treatment only."),
}
_PERSONAL: dict[str, tuple[str, str]] = {
    "panel_id": ("Panel respondent id", "Identifiant du répondant du panel"),
    "postal_code": ("Full postal code", "Code postal complet"),
    "email": ("E-mail address for requested information", "Adresse courriel pour l'information demandée"),
    "signature_name": ("Name typed to sign the letter to the MP", "Nom tapé pour signer la lettre au député"),
    "panel_parameters": ("Other entry-link parameters kept from the panel (JSON)",
                         "Autres paramètres du lien d'entrée conservés du panel (JSON)"),
}
_YES_NO = {"en": {0: "No", 1: "Yes"}, "fr": {0: "Non", 1: "Oui"}}
_STEP_NAMES = {
    "consent": Text("Consent", "Consentement"),
    "postal": Text("Postal code", "Code postal"),
    "district": Text("District choice", "Choix de la circonscription"),
    "treatment": Text("Treatment page", "Page de traitement"),
    "debrief": Text("Debrief", "Compte rendu"),
}


def _join_codes(labels: dict[int, str]) -> str:
    return "; ".join(f"{code}={label}" for code, label in labels.items())


def _question(item: Item, page: Page, language: str) -> str:
    text = item.text.get(language)
    if page.intro is not None:
        # Scale batteries put the question in the page intro; the item text is only the row.
        return f"{page.intro.get(language)} — {text}"
    return text


def _item_notes(item: Item) -> str:
    notes = []
    if item.code.startswith("emo_"):
        notes.append(EMOTION_NOTE)
    elif item.phase == "post":
        notes.append(POST_TREATMENT_NOTE)
    if item.attention_correct is not None:
        notes.append(f"Instructed-response attention check: the correct answer is {item.attention_correct}.")
    if item.when is not None:
        notes.append("Asked only to some participants (display condition): missing otherwise.")
    if any(option.when is not None for option in item.options):
        notes.append("Some options are offered only in some provinces.")
    if item.type == "integer":
        notes.append(f"Range {item.min_value}–{item.max_value}.")
    return " ".join(notes)


def item_row(item: Item, page: Page) -> CodebookRow:
    labels_en = item.value_labels("en")
    labels_fr = item.value_labels("fr")
    if item.type == "checkbox" and not labels_en:
        labels_en = {1: "Ticked", 0: "Not ticked"}
        labels_fr = {1: "Coché", 0: "Non coché"}
    return CodebookRow(
        variable=item.code,
        label_en=item.label.en,
        label_fr=item.label.fr,
        question_en=_question(item, page, "en"),
        question_fr=_question(item, page, "fr"),
        codes="; ".join(str(code) for code in labels_en),
        value_labels_en=_join_codes(labels_en),
        value_labels_fr=_join_codes(labels_fr),
        type=item.type,
        page=item.page,
        phase=item.phase,
        notes=(f"{PERSONAL_NOTE} {TEXT_CELLS_NOTE}" if item.is_personal else _item_notes(item)),
    )


def meta_row(variable: str) -> CodebookRow:
    label_en, label_fr, kind, notes = _META[variable]
    labels = _YES_NO if kind == "yesno" else {"en": {}, "fr": {}}
    return CodebookRow(
        variable=variable, label_en=label_en, label_fr=label_fr, question_en="", question_fr="",
        codes="; ".join(str(code) for code in labels["en"]),
        value_labels_en=_join_codes(labels["en"]), value_labels_fr=_join_codes(labels["fr"]),
        type=kind, page="", phase="meta", notes=notes,
    )


def timing_row(step: str, instrument: Instrument) -> CodebookRow:
    try:
        title = instrument.page(step).title
    except KeyError:
        title = _STEP_NAMES.get(step, Text(step, step))
    return CodebookRow(
        variable=f"t_{step}",
        label_en=f"Seconds on page: {title.en}"[:80],
        label_fr=f"Secondes sur la page : {title.fr}"[:80],
        question_en="", question_fr="", codes="", value_labels_en="", value_labels_fr="",
        type="seconds", page=step, phase="meta",
        notes="Server time from page served to page submitted; missing if the page was not submitted.",
    )


def quality_rows(study: Any = None) -> list[CodebookRow]:
    """The quality columns, worded from the flags' own definitions (studyserver.quality.flags)."""
    rule = ", ".join(study.exclusion_rule) if study is not None else ""
    frozen = f" (frozen {study.exclusion_frozen_at:%Y-%m-%d %H:%M} UTC)" if study is not None and study.exclusion_frozen_at else ""

    def row(variable: str, label_en: str, label_fr: str, kind: str, notes: str) -> CodebookRow:
        labels = _YES_NO if kind == "yesno" else {"en": {}, "fr": {}}
        return CodebookRow(variable=variable, label_en=label_en, label_fr=label_fr, question_en="", question_fr="",
                           codes="; ".join(str(code) for code in labels["en"]),
                           value_labels_en=_join_codes(labels["en"]), value_labels_fr=_join_codes(labels["fr"]),
                           type=kind, page="", phase="meta", notes=notes)

    rows = [
        row("quality_flags", "Respondent-quality flags raised", "Indicateurs de qualité du répondant levés", "text",
            f"Flag names separated by '{SEPARATOR}', empty when none: "
            + ", ".join(flag.name for flag in FLAGS) + " (each defined in its flag_<name> row). Computed on "
            "the server from page timings, answers and traces recorded as the participant went; never shown "
            "to the participant, who was never stopped for one. A typed signature pasted rather than typed "
            "is not a flag: it cannot be known without JavaScript."),
        row("excluded", "Excluded by the pre-registered rule", "Exclu selon la règle préenregistrée", "yesno",
            "1 when any flag of the study's exclusion rule is raised"
            + (f": {rule or 'no flag'}{frozen}." if study is not None else " (the rule chosen before opening, frozen when "
               "the study opened).") + " The analysis reports the sample with and without exclusions."),
    ]
    rows += [row(f"flag_{flag.name}", flag.label_en, flag.label_fr, "yesno", flag.describe()) for flag in FLAGS]
    return rows


def personal_row(variable: str) -> CodebookRow:
    label_en, label_fr = _PERSONAL[variable]
    return CodebookRow(
        variable=variable, label_en=label_en, label_fr=label_fr, question_en="", question_fr="",
        codes="", value_labels_en="", value_labels_fr="", type="text", page="", phase="meta",
        notes=PERSONAL_NOTE,
    )


def build_codebook(instrument: Instrument | None = None, include_personal: bool = False, *,
                   study: Any = None, instruments: Sequence[Instrument] | None = None) -> list[CodebookRow]:
    """The rows documenting ``build_export``'s columns, in the same order: one per column for one
    version; for a ``study`` (or ``instruments``) spanning versions, one per distinct definition."""
    if instruments is None:
        instruments = export_columns.study_instruments(study) if study is not None else [instrument or get_instrument()]
    rows = [meta_row(name) for name in export_columns.META_COLUMNS]
    definitions: dict[str, dict[CodebookRow, list[str]]] = {}
    for version in instruments:
        pages = {page.key: page for page in version.pages}
        for item in version.items:
            if not item.is_personal:
                definitions.setdefault(item.code, {}).setdefault(item_row(item, pages[item.page]), []).append(version.version)
    for code in export_columns.answer_codes(instruments):
        rows += [replace(row, versions="; ".join(labels)) for row, labels in definitions[code].items()]
    rows += [timing_row(step, _version_with_page(step, instruments)) for step in export_columns.timed_steps_of(instruments)]
    rows += quality_rows(study)
    if include_personal:
        rows += [personal_row(name) for name in export_columns.PERSONAL_COLUMNS]
    return rows


def _version_with_page(step: str, instruments: Sequence[Instrument]) -> Instrument:
    """The latest version that has the page ``step`` (its title names the timing column)."""
    for version in reversed(instruments):
        if any(page.key == step for page in version.pages):
            return version
    return instruments[-1]


def codebook_csv(rows: Iterable[CodebookRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CODEBOOK_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def codebook_markdown(rows: Iterable[CodebookRow], instrument: Instrument | None = None, *,
                      instruments: Sequence[Instrument] | None = None, title: str = "") -> str:
    """A readable document: one section per variable group, a table per section."""
    instruments = instruments or [instrument or get_instrument()]
    labels = [version.version for version in instruments]
    rows = list(rows)
    out = [
        f"# Codebook — {title + ', ' if title else ''}{'versions ' if len(labels) > 1 else ''}{', '.join(labels)}",
        "",
        "Generated from the instrument definition that renders the questionnaire. One row per "
        "participant in the export; numeric codes with their labels in English and French.",
        "",
        "**Post-treatment moderators.** The emotions (`emo_*`) and every other `post` variable are "
        "measured after the treatment image; they can be affected by it. Emotions are analysed as "
        "post-treatment moderators (H2c) and flagged as such; nobody is excluded on a "
        "post-treatment answer.",
        "",
        f"**Text cells and spreadsheet formulas.** {TEXT_CELLS_NOTE}",
        "",
    ]
    sections = [("Meta variables", "meta"), ("Pre-treatment questions", "pre"),
                ("Post-treatment questions", "post")]
    header: tuple[str, ...] = ("variable", "label_en", "label_fr", "question_en", "question_fr", "value_labels_en",
                               "value_labels_fr", "type", "page", "notes")
    if len(labels) > 1:
        out[-1:-1] = [f"**Questionnaire versions.** The study's participants answered {', '.join(labels)}; a "
                      "variable whose wording or codes differ has one row per version (column `versions`): "
                      "read each value with the row of the participant's `instrument_version`.", ""]
        header += ("versions",)
    for title, phase in sections:
        section = [row for row in rows if row.phase == phase]
        if not section:
            continue
        out += [f"## {title}", "", "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header)]
        for row in section:
            values = asdict(row)
            out.append("| " + " | ".join(_md_cell(str(values[name])) for name in header) + " |")
        out.append("")
    return "\n".join(out)


def variable_labels(rows: Iterable[CodebookRow]) -> dict[str, str]:
    """English labels cut to Stata's 80 characters."""
    return {row.variable: row.label_en[:80] for row in rows}
