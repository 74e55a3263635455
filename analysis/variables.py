"""The study's variable names, in one place.

Every other module of the package reads names from a :class:`StudyVariables` instance instead of
spelling item codes itself, so a change of the instrument is a change here (or in a codebook
override file, see :func:`load_variables`), never a hunt through the estimators.

The defaults mirror the questionnaire's item codes (study spec, issue 7). They are immutable:
``default_variables()`` builds a fresh object, and overrides return a modified copy.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# The arms, the analysis's one definition (it imports nothing of studyserver): the same as
# studyserver/studies/arms.py, which tests/analysis/test_arms.py checks.
CONTROL_ARM = "control"
TREATMENT_ARMS: tuple[str, ...] = ("distant", "house", "district_landmark", "provincial_landmark")
ARMS: tuple[str, ...] = (CONTROL_ARM, *TREATMENT_ARMS)


@dataclass(frozen=True)
class ScaleSpec:
    """An additive index: the mean of ``items`` after reverse-coding ``reverse`` items."""

    name: str
    items: tuple[str, ...]
    scale_min: float
    scale_max: float
    reverse: tuple[str, ...] = ()
    label: str = ""
    # A respondent gets a score when at least this share of the items is answered.
    min_share_answered: float = 0.5


@dataclass(frozen=True)
class ModeratorSpec:
    name: str
    label: str
    categorical: bool = False
    # Measured after treatment: conditioning on it can bias the estimates. Always shown in outputs.
    post_treatment: bool = False
    hypothesis: str = ""


@dataclass(frozen=True)
class OutcomeSpec:
    name: str
    family: str
    label: str
    binary: bool = False


@dataclass(frozen=True)
class ContrastSpec:
    """A directional planned contrast: sum(weight * arm effect) > 0 under the hypothesis."""

    name: str
    hypothesis: str
    weights: tuple[tuple[str, float], ...]
    label: str = ""
    alternative: str = "greater"  # "greater" | "less" | "two-sided"


@dataclass(frozen=True)
class StudyVariables:
    participant_id: str = "participant_id"
    state: str = "state"
    arm: str = "arm"
    stratum: str = "stratum"
    completed_state: str = "completed"
    attention: str = "attention_passed"
    control_arm: str = CONTROL_ARM
    treatment_arms: tuple[str, ...] = TREATMENT_ARMS
    outcomes: tuple[OutcomeSpec, ...] = ()
    scales: tuple[ScaleSpec, ...] = ()
    moderators: tuple[ModeratorSpec, ...] = ()
    # Pre-treatment covariates for balance tables (continuous and categorical separately).
    balance_continuous: tuple[str, ...] = ()
    balance_categorical: tuple[str, ...] = ()
    # Covariates for Lin's adjusted estimator (numeric, pre-treatment).
    adjustment_covariates: tuple[str, ...] = ()
    contrasts: tuple[ContrastSpec, ...] = ()
    # Codes meaning "no substantive answer" per variable: set to missing before analysis.
    missing_codes: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # Variables measured after assignment (from the codebook's phase column).
    post_treatment_variables: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def arms(self) -> tuple[str, ...]:
        return (self.control_arm, *self.treatment_arms)

    def outcome_families(self) -> dict[str, list[str]]:
        families: dict[str, list[str]] = {}
        for outcome in self.outcomes:
            families.setdefault(outcome.family, []).append(outcome.name)
        return families

    def outcome(self, name: str) -> OutcomeSpec | None:
        return next((o for o in self.outcomes if o.name == name), None)

    def moderator(self, name: str) -> ModeratorSpec | None:
        return next((m for m in self.moderators if m.name == name), None)

    def is_post_treatment(self, name: str) -> bool:
        spec = self.moderator(name)
        if spec is not None and spec.post_treatment:
            return True
        if name in self.post_treatment_variables:
            return True
        # A scale built from post-treatment items is itself post-treatment.
        scale = next((s for s in self.scales if s.name == name), None)
        return scale is not None and any(i in self.post_treatment_variables for i in scale.items)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)


EMOTION_ITEMS: tuple[str, ...] = (
    "emo_anxious", "emo_afraid", "emo_ashamed", "emo_guilty",
    "emo_sad", "emo_powerless", "emo_hopeful", "emo_optimistic",
)
OUTCOME_ITEMS: tuple[str, ...] = (
    "wtp_tax_buildings", "wtp_tax_oil", "int_reduce_footprint", "int_protect_home",
    "int_push_government", "info_emissions", "info_floodprotect", "letter_want", "letter_signed",
)


def default_variables() -> StudyVariables:
    scales = (
        ScaleSpec("dv_wtp", ("wtp_tax_buildings", "wtp_tax_oil"), 1, 5,
                  label="Willingness to pay (mean of 2 items, 1-5)"),
        ScaleSpec("dv_intentions",
                  ("int_reduce_footprint", "int_protect_home", "int_push_government"), 1, 5,
                  label="Behavioural intentions (mean of 3 items, 1-5)"),
        ScaleSpec("emo_anxiety", ("emo_anxious", "emo_afraid"), 1, 5, label="Anxiety (post)"),
        ScaleSpec("emo_shame", ("emo_ashamed", "emo_guilty"), 1, 5, label="Shame (post)"),
        ScaleSpec("emo_sadness", ("emo_sad", "emo_powerless"), 1, 5, label="Sadness (post)"),
        ScaleSpec("emo_hope", ("emo_hopeful", "emo_optimistic"), 1, 5, label="Hope (post)"),
        ScaleSpec("values_biospheric", ("val_bio1", "val_bio2"), 1, 7, label="Biospheric values"),
        ScaleSpec("values_altruistic", ("val_alt1", "val_alt2"), 1, 7, label="Altruistic values"),
        ScaleSpec("values_egoistic", ("val_ego1", "val_ego2"), 1, 7, label="Egoistic values"),
    )
    outcomes = (
        OutcomeSpec("dv_wtp", "DV1 willingness to pay", "WTP index"),
        OutcomeSpec("wtp_tax_buildings", "DV1 willingness to pay", "Tax on buildings"),
        OutcomeSpec("wtp_tax_oil", "DV1 willingness to pay", "Tax on oil"),
        OutcomeSpec("dv_intentions", "DV2 behavioural intentions", "Intentions index"),
        OutcomeSpec("int_reduce_footprint", "DV2 behavioural intentions", "Reduce footprint"),
        OutcomeSpec("int_protect_home", "DV2 behavioural intentions", "Protect home"),
        OutcomeSpec("int_push_government", "DV2 behavioural intentions", "Push government"),
        OutcomeSpec("info_emissions", "DV2 behavioural intentions", "Info: emissions", True),
        OutcomeSpec("info_floodprotect", "DV2 behavioural intentions", "Info: flood protection",
                    True),
        OutcomeSpec("letter_want", "DV3 engagement", "Wants letter to MP", True),
        OutcomeSpec("letter_signed", "DV3 engagement", "Signed letter to MP", True),
    )
    emotion_moderators = tuple(
        ModeratorSpec(name, label, post_treatment=True, hypothesis="H2c")
        for name, label in (
            ("emo_anxiety", "Anxiety"), ("emo_shame", "Shame"),
            ("emo_sadness", "Sadness"), ("emo_hope", "Hope"),
        )
    )
    moderators = (
        ModeratorSpec("ideology", "Ideology (0 left - 10 right)", hypothesis="H2a"),
        ModeratorSpec("worry", "Worry about climate change (1-4)", hypothesis="H2b"),
        *emotion_moderators,
    )
    contrasts = (
        ContrastSpec("H1a: house - district_landmark", "H1a",
                     (("house", 1.0), ("district_landmark", -1.0)),
                     "house > district landmark"),
        ContrastSpec("H1a: house - provincial_landmark", "H1a",
                     (("house", 1.0), ("provincial_landmark", -1.0)),
                     "house > provincial landmark"),
        ContrastSpec("H1b: district_landmark - provincial_landmark", "H1b",
                     (("district_landmark", 1.0), ("provincial_landmark", -1.0)),
                     "district landmark > provincial landmark"),
        ContrastSpec("H1c: Canadian arms - distant", "H1c",
                     (("house", 1 / 3), ("district_landmark", 1 / 3),
                      ("provincial_landmark", 1 / 3), ("distant", -1.0)),
                     "mean of the three Canadian arms > distant"),
    )
    return StudyVariables(
        outcomes=outcomes,
        scales=scales,
        moderators=moderators,
        balance_continuous=(
            "age", "education", "income", "ideology", "worry", "flood_risk_home",
            "cc_optimism", "harm_self", "harm_canadians", "harm_future", "values_biospheric",
            "values_altruistic", "values_egoistic", "years_in_district", "attention_passed",
        ),
        balance_categorical=(
            "gender", "tenure", "dwelling", "urbanicity", "home_language", "party_id",
            "employment", "cc_happening", "cc_cause",
        ),
        adjustment_covariates=(
            "age", "education", "ideology", "worry", "flood_risk_home", "values_biospheric",
        ),
        contrasts=contrasts,
        missing_codes={"gender": (99,), "income": (99,)},
        post_treatment_variables=(*OUTCOME_ITEMS, *EMOTION_ITEMS, "manip_check"),
    )


# --- overrides -------------------------------------------------------------------------------

_NESTED_TYPES: dict[str, type] = {
    "outcomes": OutcomeSpec, "scales": ScaleSpec, "moderators": ModeratorSpec,
    "contrasts": ContrastSpec,
}


def _as_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


def apply_overrides(base: StudyVariables, overrides: Mapping[str, Any]) -> StudyVariables:
    """Return ``base`` with the fields named in ``overrides`` replaced.

    Lists of outcomes/scales/moderators/contrasts are given as lists of mappings with the
    dataclass field names, e.g. ``{"moderators": [{"name": "ideology", "label": "..."}]}``.
    """
    known = {f.name for f in fields(StudyVariables)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown variable settings: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _NESTED_TYPES:
            spec_type = _NESTED_TYPES[key]
            changes[key] = tuple(
                spec_type(**{k: _as_tuple(v) for k, v in item.items()}) for item in value
            )
        elif key in ("missing_codes", "labels"):
            changes[key] = {k: _as_tuple(v) for k, v in value.items()}
        else:
            changes[key] = _as_tuple(value)
    return replace(base, **changes)


def apply_codebook_csv(base: StudyVariables, path: str | Path) -> StudyVariables:
    """Take labels and the pre/post-treatment phase from the platform's codebook CSV.

    Columns used: ``variable``, ``label_en``, ``phase`` (``pre`` | ``post``). A moderator whose
    variable (or one of whose scale items) is ``post`` gets ``post_treatment=True``.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"variable", "phase"} <= set(rows[0]):
        raise ValueError("codebook CSV needs at least the columns 'variable' and 'phase'")
    labels = dict(base.labels)
    post = set(base.post_treatment_variables)
    for row in rows:
        name = (row.get("variable") or "").strip()
        if not name:
            continue
        if row.get("label_en"):
            labels[name] = row["label_en"].strip()
        phase = (row.get("phase") or "").strip().lower()
        if phase == "post":
            post.add(name)
        elif phase == "pre":
            post.discard(name)
    updated = replace(base, labels=labels, post_treatment_variables=tuple(sorted(post)))
    moderators = tuple(
        replace(m, post_treatment=m.post_treatment or updated.is_post_treatment(m.name))
        for m in updated.moderators
    )
    return replace(updated, moderators=moderators)


def load_variables(path: str | Path | None = None,
                   base: StudyVariables | None = None) -> StudyVariables:
    """Defaults, optionally overridden by a JSON/YAML settings file or a codebook CSV."""
    variables = base or default_variables()
    if path is None:
        return variables
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return apply_codebook_csv(variables, path)
    text = path.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        import yaml  # imported here: only needed for YAML overrides

        data = yaml.safe_load(text) or {}
    elif suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"codebook override must be .json, .yaml/.yml or .csv, not {suffix!r}")
    if not isinstance(data, Mapping):
        raise ValueError("codebook override file must contain a mapping at top level")
    return apply_overrides(variables, data)
