"""The wide export: one row per participant, stable variable names from the instrument.

``build_export`` runs a fixed, small number of queries whatever the study size (participants with
their district, assignment, exposure and personal data joined; all page submissions; the stimuli
shown) and assembles the frame column by column, so 100,000 participants take seconds.

A study that moved to a revised questionnaire is still one export: its columns are the union of
its versions' variables, every value is the code the participant's own version stored, and
``instrument_version`` names that version (the codebook lists each version's codes).

Every participant appears, screened-out and abandoned ones included (with the state where they
stopped), so attrition can be analysed. A withdrawn participant keeps only their id, the state
``withdrawn`` and the allocation slot they took (arm, stratum, position, time: the sequence is
append-only and attrition is reported by arm); every answer and personal datum is gone.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import TextField
from django.db.models.functions import Cast

from studyserver.instrument.definition import Instrument, get_instrument
from studyserver.instrument.models import instrument_for_hash
from studyserver.quality.flags import FLAG_NAMES, is_excluded, join_flags
from studyserver.quality.services import assess_study
from studyserver.survey.flow import all_steps
from studyserver.survey.models import PageSubmission, Participant
from studyserver.treatments.models import Stimulus

META_COLUMNS: tuple[str, ...] = (
    "participant_id", "state", "screenout_reason", "screenout_detail", "language", "arm", "stratum",
    "sequence_position", "province_code", "fsa", "fed_code", "district_name_en",
    "district_method", "rep_order", "consent_version", "instrument_version", "started_at",
    "consented_at", "assigned_at", "exposed_at", "completed_at", "exposure_ms",
    "image_visible_ms", "stimulus_id", "generator_backend", "model_version", "attention_passed",
)
# Respondent quality (studyserver.quality): the flags raised, the pre-registered exclusion, one 0/1 per flag.
QUALITY_COLUMNS: tuple[str, ...] = ("quality_flags", "excluded", *(f"flag_{name}" for name in FLAG_NAMES))
PERSONAL_COLUMNS: tuple[str, ...] = ("panel_id", "postal_code", "email", "signature_name", "panel_parameters")
TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "started_at", "consented_at", "assigned_at", "exposed_at", "completed_at",
)
NUMERIC_ITEM_TYPES = frozenset({"integer", "choice", "scale", "yesno", "checkbox"})
# Columns a withdrawn participant keeps: the slot they took, nothing about them.
WITHDRAWN_KEEPS = frozenset({"participant_id", "state", "arm", "stratum", "sequence_position",
                             "assigned_at"})

# Participant fields read in the one participant query, as ``column: ORM lookup``.
_PARTICIPANT_LOOKUPS: dict[str, str] = {
    "participant_id": "id",
    "state": "state",
    "screenout_reason": "screenout_reason",
    "screenout_detail": "screenout_detail",
    "language": "language",
    "arm": "assignment__arm",
    "stratum": "assignment__stratum",
    "sequence_position": "assignment__sequence_position",
    "province_code": "province_code",
    "fsa": "fsa",
    "fed_code": "district__fed_code",
    "district_name_en": "district__name_en",
    "district_method": "district_method",
    "rep_order": "district__representation_order",
    "consent_version": "consent_version",
    "instrument_version": "instrument_version",
    "started_at": "started_at",
    "consented_at": "consented_at",
    "assigned_at": "assignment__assigned_at",
    "exposed_at": "exposed_at",
    "completed_at": "completed_at",
    "stimulus_id": "exposure__stimulus_id",
    "attention_passed": "attention_passed",
    "_page_served_at": "exposure__page_served_at",
    "_image_loaded_at": "exposure__image_loaded_at",
    "_submitted_at": "exposure__submitted_at",
}
_PERSONAL_LOOKUPS: dict[str, str] = {name: f"personal_data__{name}" for name in PERSONAL_COLUMNS}

Progress = Callable[[str], None]


def timed_steps(instrument: Instrument) -> list[str]:
    """Every step of the flow in order (consent … debrief): one ``t_<step>`` column each."""
    return all_steps(instrument)


def _union(lists: Sequence[Sequence[str]]) -> list[str]:
    """Names in first-seen order: the first version's order, then what later versions added."""
    return list(dict.fromkeys(name for names in lists for name in names))


def answer_codes(instruments: Sequence[Instrument]) -> list[str]:
    return _union([instrument.answer_codes for instrument in instruments])


def timed_steps_of(instruments: Sequence[Instrument]) -> list[str]:
    return _union([timed_steps(instrument) for instrument in instruments])


def study_instruments(study: Any) -> list[Instrument]:
    """The parsed versions a study's export covers (see ``Study.questionnaire_versions``)."""
    return instruments_for([version.content_hash for version in study.questionnaire_versions()])


def instruments_for(hashes: Sequence[str]) -> list[Instrument]:
    return [instrument_for_hash(digest) for digest in hashes]


def export_columns(instrument: Instrument | None = None, include_personal: bool = False, *,
                   instruments: Sequence[Instrument] | None = None) -> list[str]:
    """The export's columns: meta, every version's answers (union), timings, quality, personal data."""
    instruments = instruments or [instrument or get_instrument()]
    columns = [*META_COLUMNS, *answer_codes(instruments)]
    columns += [f"t_{step}" for step in timed_steps_of(instruments)]
    columns += QUALITY_COLUMNS
    if include_personal:
        columns += PERSONAL_COLUMNS
    return columns


def _milliseconds(later: pd.Series, earlier: pd.Series) -> pd.Series:
    later = pd.to_datetime(later, utc=True)
    earlier = pd.to_datetime(earlier, utc=True)
    millis = ((later - earlier).dt.total_seconds() * 1000).round()
    return millis.astype("Int64")


def _codes(values: Sequence[Any]) -> pd.Series:
    """Answers as integer codes (nullable); a column with a non-integer value stays numeric float."""
    numbers = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce")
    whole = numbers.dropna()
    if (whole == np.floor(whole)).all():
        return numbers.astype("Int64")
    return numbers.astype("Float64")


def _dashed_uuid(value: Any) -> str:
    text = str(value)
    if len(text) == 32:  # SQLite stores UUIDs as 32 hex digits
        return str(uuid.UUID(text))
    return text


def _text(values: pd.Series) -> pd.Series:
    """Text with empty strings as missing, so every format writes one kind of blank."""
    series = values.astype("string")
    return series.mask(series == "")


def build_export(study: Any, include_personal: bool = False, *,
                 instrument: Instrument | None = None,
                 progress: Progress | None = None) -> pd.DataFrame:
    """One row per participant of ``study``; columns as :func:`export_columns` lists them for the
    study's versions (or for ``instrument`` alone when given). ``frame.attrs["questionnaire_versions"]`` keeps
    the versions' hashes, for the codebook sheet and Stata labels of the file formats."""
    hashes = [] if instrument is not None else [v.content_hash for v in study.questionnaire_versions()]
    instruments = [instrument] if instrument is not None else instruments_for(hashes)
    say = progress or (lambda message: None)
    lookups = dict(_PARTICIPANT_LOOKUPS)
    if include_personal:
        lookups.update(_PERSONAL_LOOKUPS)

    # Ids are read as text: converting a million UUID objects costs seconds. PostgreSQL writes
    # them with dashes, SQLite without; keys are compared without dashes.
    participants = (
        Participant.objects.filter(study=study)
        .order_by("started_at", "id")
        .annotate(_id_text=Cast("id", output_field=TextField()))
        .values_list("_id_text", *list(lookups.values())[1:])
    )
    frame = pd.DataFrame.from_records(
        list(participants.iterator(chunk_size=20_000)), columns=list(lookups)
    )
    say(f"{len(frame)} participants read")
    frame["participant_id"] = frame["participant_id"].astype(object).map(_dashed_uuid)
    if frame.empty:
        frame = frame.astype(object)
    row_of = {pid.replace("-", ""): position for position, pid in enumerate(frame["participant_id"])}

    # Answers: later submissions of a step win (edits before assignment bump the revision).
    codes = answer_codes(instruments)
    wanted = set(codes)
    answers: list[dict[str, Any]] = [{} for _ in range(len(frame))]
    steps = timed_steps_of(instruments)
    step_index = {step: position for position, step in enumerate(steps)}
    seconds = np.full((len(frame), len(steps)), np.nan)
    submissions = (
        PageSubmission.objects.filter(participant__study=study)
        .order_by("submitted_at", "id")
        .annotate(_pid=Cast("participant_id", output_field=TextField()),
                  _answers=Cast("answers", output_field=TextField()))
        .values_list("_pid", "step", "_answers", "seconds_on_page")
    )
    count = 0
    decode = json.loads
    for participant_id, step, page_answers, on_page in submissions.iterator(chunk_size=20_000):
        row = row_of[participant_id.replace("-", "")]
        if page_answers and page_answers != "{}":
            merged = answers[row]
            for code, value in decode(page_answers).items():
                if code in wanted:
                    merged[code] = value
        column = step_index.get(step)
        if column is not None and on_page is not None:
            seconds[row, column] = on_page
        count += 1
    say(f"{count} page submissions read")

    frame["exposure_ms"] = _milliseconds(frame["_submitted_at"], frame["_page_served_at"])
    frame["image_visible_ms"] = _milliseconds(frame["_submitted_at"], frame["_image_loaded_at"])

    stimulus_ids = sorted({sid for sid in frame["stimulus_id"].dropna() if sid})
    provenance = {
        stimulus.public_id: stimulus.provenance()
        for stimulus in Stimulus.objects.filter(public_id__in=stimulus_ids)
    }
    for key in ("generator_backend", "model_version"):
        frame[key] = frame["stimulus_id"].map(
            lambda sid, key=key: provenance.get(sid, {}).get(key) if sid else None
        )
    frame["attention_passed"] = frame["attention_passed"].map(
        lambda passed: None if passed is None or pd.isna(passed) else int(bool(passed))
    ).astype("Int64")
    frame["sequence_position"] = frame["sequence_position"].astype("Int64")
    if include_personal:
        frame["panel_parameters"] = frame["panel_parameters"].map(
            lambda kept: json.dumps(kept, sort_keys=True, ensure_ascii=False) if kept else None)
    for column in TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    text_columns = [c for c in lookups if c not in TIMESTAMP_COLUMNS and not c.startswith("_")
                    and c not in {"sequence_position", "attention_passed"}]
    text_columns += ["generator_backend", "model_version"]
    for column in text_columns:
        frame[column] = _text(frame[column])

    numeric = _numeric_codes(instruments)
    answer_frame = pd.DataFrame.from_records(answers, columns=codes, index=frame.index)
    for code in codes:
        convert = _codes if code in numeric else _text_list
        answer_frame[code] = convert(answer_frame[code].astype(object).tolist())
    timing_frame = pd.DataFrame(seconds, columns=[f"t_{step}" for step in steps], index=frame.index)
    quality_frame = _quality_frame(study, frame["participant_id"], frame.index)
    say("respondent-quality flags computed")
    result = pd.concat(
        [frame[list(META_COLUMNS)], answer_frame, timing_frame, quality_frame]
        + ([frame[list(PERSONAL_COLUMNS)]] if include_personal else []),
        axis=1,
    )
    withdrawn = (result["state"] == "withdrawn").fillna(False).to_numpy(dtype=bool)
    if withdrawn.any():
        for column in result.columns:
            if column not in WITHDRAWN_KEEPS:
                result.loc[withdrawn, column] = pd.NA
    if hashes:  # plain strings: Parquet writes attrs into its metadata as JSON
        result.attrs["questionnaire_versions"] = hashes
    say(f"export frame built: {result.shape[0]} rows x {result.shape[1]} columns"
        + (f" ({len(instruments)} questionnaire versions)" if len(instruments) > 1 else ""))
    return result


def _quality_frame(study: Any, participant_ids: pd.Series, index: pd.Index) -> pd.DataFrame:
    """``quality_flags`` (names, ``;``-separated, '' for none), ``excluded`` by the study's frozen
    rule, and ``flag_<name>`` 0/1: the same functions as the funnel and the ``quality_flags`` command."""
    flags = assess_study(study)
    rule = study.exclusion_rule
    raised = [flags.get(pid, []) for pid in participant_ids]
    columns: dict[str, Any] = {
        "quality_flags": pd.Series([join_flags(names) for names in raised], index=index, dtype="string"),
        "excluded": pd.Series([int(is_excluded(names, rule)) for names in raised], index=index, dtype="Int64"),
    }
    for name in FLAG_NAMES:
        columns[f"flag_{name}"] = pd.Series([int(name in names) for names in raised], index=index, dtype="Int64")
    return pd.DataFrame(columns, index=index)


def _numeric_codes(instruments: Sequence[Instrument]) -> set[str]:
    """Variables numeric in every version that asks them (a variable that was text in one stays text)."""
    kinds: dict[str, set[bool]] = {}
    for instrument in instruments:
        for item in instrument.items:
            kinds.setdefault(item.code, set()).add(item.type in NUMERIC_ITEM_TYPES)
    return {code for code, numeric in kinds.items() if numeric == {True}}


def _text_list(values: Sequence[Any]) -> pd.Series:
    return _text(pd.Series([None if v is None else str(v) for v in values], dtype="object"))


def stata_value_labels(instrument: Instrument | None = None, language: str = "en", *,
                       instruments: Sequence[Instrument] | None = None) -> dict[str, dict[int, str]]:
    """Value labels of every coded answer (and attention_passed), for Stata.

    Stata holds one label set per variable: across versions, a variable whose codes mean the same
    in every version gets the merged labels; one whose codes changed meaning gets none (the
    codebook documents each version's codes, and ``instrument_version`` says which applies).
    A label that a revision moved to another code (99 → 9 "Prefer not to say") would appear twice
    in the set, which Stata and ``pandas.read_stata`` refuse: each copy names the versions that
    used its code, "Prefer not to say (floodlight-v1)" / "… (floodlight-v2)", and the code
    itself where that is still ambiguous.
    """
    instruments = instruments or [instrument or get_instrument()]
    yes_no = {0: "No", 1: "Yes"} if language == "en" else {0: "Non", 1: "Oui"}
    labels: dict[str, dict[int, str]] = {name: dict(yes_no) for name in
                                         ("attention_passed", "excluded", *(f"flag_{n}" for n in FLAG_NAMES))}
    used_by: dict[tuple[str, int], list[str]] = {}
    conflicting: set[str] = set()
    for version in instruments:
        for item in version.items:
            if item.is_personal or item.type not in NUMERIC_ITEM_TYPES:
                continue
            item_labels = item.value_labels(language)
            if item.type == "checkbox" and not item_labels:
                item_labels = {1: "Ticked", 0: "Not ticked"}
            if not item_labels:
                continue
            merged = labels.setdefault(item.code, {})
            if any(merged.get(code, label) != label for code, label in item_labels.items()):
                conflicting.add(item.code)
            merged.update(item_labels)
            for code in item_labels:
                used_by.setdefault((item.code, code), []).append(version.version)
    for code in conflicting:
        labels.pop(code)
    return {variable: _unique_labels(variable, merged, used_by) for variable, merged in labels.items()}


def _unique_labels(variable: str, labels: dict[int, str],
                   used_by: dict[tuple[str, int], list[str]]) -> dict[int, str]:
    """The label set with every repeated text told apart (see :func:`stata_value_labels`)."""
    def repeated(texts: dict[int, str]) -> set[str]:
        counts = Counter(texts.values())
        return {text for text, count in counts.items() if count > 1}

    twice = repeated(labels)
    if not twice:
        return labels
    named = {code: f"{text} ({', '.join(dict.fromkeys(used_by.get((variable, code), [])))})"
             if text in twice and used_by.get((variable, code)) else text for code, text in labels.items()}
    still = repeated(named)
    return {code: f"{text} [{code}]" if text in still else text for code, text in named.items()}
