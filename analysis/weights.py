"""Weights to Canada: raking a sample to census margins (province x age group, and gender).

The raking itself is weightipy's RIM algorithm (iterative proportional fitting with a cap);
this module only turns a margins file and an export into weightipy's targets, applies the
documented rules for answers the census has no category for, and measures the result.

Rules (the README repeats them):

* Margins file: columns ``province_code, variable, category, count``; ``variable`` is
  ``age_group`` (adults by province and age group, labels ``A-B`` or ``A+``) or ``gender``
  (``female``/``male`` by province). A ``province_code`` may join several provinces
  (``NT/NU``): respondents of either belong to it.
* Two raking dimensions: province x age group (the cells' shares of all adults) and province x
  gender (the province's adult share split by its census female/male ratio; the census gender
  counts cover all ages, the ratio is the same to a few tenths of a point among adults).
  Margins (targets and achieved) are percent of adults: each variable's province cells sum to
  100, and ``all`` gives the national margins (their sums).
* Missing or unusable answers: a respondent whose gender is "another gender", "prefer not to
  say" or missing, or whose age is unknown, is put in an ``unknown`` category of that dimension
  in their province whose target is its share of the province's respondents: they keep the
  weight the other dimension gives them, and the census distribution applies to the others.
  A respondent whose province is missing or not in the file is not raked and gets weight 1 (the
  mean weight).
* Sparse cells: a province x age group cell with fewer than ``MIN_CELL`` (5) respondents is
  merged with the next age group of that province (the previous one for the last) until every
  cell has 5, and a province with fewer than 5 women or 5 men is raked on its total only there
  (tiny cells make the margins unreachable and the weights explode); a province with no
  respondent at all cannot be represented: its share goes to the others (all said in
  ``notes``, and the achieved margins show what it costs).
* Trimming: after raking, weights above ``cap`` times the mean weight (default 5) are set to
  the cap and all rescaled to mean 1, until none is above it. Trimming trades a little bias
  (the margins are then met only as closely as the cap allows: the achieved margins show how
  closely) for variance. Final weights have mean 1 over the weighted respondents.
* Design effect (Kish): n * sum(w^2) / sum(w)^2; effective n = sum(w)^2 / sum(w^2).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.variables import StudyVariables

DEFAULT_CAP = 5.0
MIN_CELL = 5
UNKNOWN = "unknown"
AGE_VARIABLE = "age_group"
GENDER_VARIABLE = "gender"
GENDER_CATEGORIES = ("female", "male")
# The questionnaire's gender codes (instrument item ``gender``) for the census categories;
# 3 (another gender) and 99 (prefer not to say) have no census category.
GENDER_CODES: dict[float, str] = {1.0: "female", 2.0: "male"}
REFERENCE_DATA_ENV = "FLOODLIGHT_REFERENCE_DATA"
MARGINS_FILE_NAME = "census2021_margins.csv"
MARGIN_COLUMNS = ("province_code", "variable", "category", "count")
_AGE_LABEL = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|\+)\s*$")
_AGE_DIMENSION = "_w_province_age"
_GENDER_DIMENSION = "_w_province_gender"


class WeightingError(ValueError):
    """The margins file or the sample cannot be used for raking."""


@dataclass(frozen=True)
class Margins:
    """Census counts by province: ``age`` and ``gender`` indexed by (province_code, category)."""

    age: pd.Series
    gender: pd.Series
    age_groups: tuple[str, ...]
    provinces: tuple[str, ...]
    source: str = ""

    def province_of(self) -> dict[str, str]:
        """Each province code a respondent can have -> the margins' code holding it (NT -> NT/NU)."""
        return {part.strip(): code for code in self.provinces for part in code.split("/")}


def default_margins_path() -> Path | None:
    """``$FLOODLIGHT_REFERENCE_DATA/census2021_margins.csv`` when that variable names a folder
    holding it (the demo's default); the library never assumes a location itself."""
    folder = os.environ.get(REFERENCE_DATA_ENV)
    if not folder:
        return None
    path = Path(folder) / MARGINS_FILE_NAME
    return path if path.is_file() else None


def parse_age_group(label: str) -> tuple[float, float]:
    """``"25-34"`` -> (25, 35); ``"65+"`` -> (65, inf): a half-open interval of ages."""
    match = _AGE_LABEL.match(str(label))
    if not match:
        raise WeightingError(f"age group {label!r} is neither 'A-B' nor 'A+'")
    low = float(match.group(1))
    high = float(match.group(2)) + 1 if match.group(2) else math.inf
    if high <= low:
        raise WeightingError(f"age group {label!r} is empty")
    return low, high


def read_margins(path: str | Path) -> Margins:
    """Read and check a margins file in the layout of ``census2021_margins.csv``."""
    path = Path(path)
    if not path.is_file():
        raise WeightingError(f"no such margins file: {path}")
    try:
        table = pd.read_csv(path, dtype={"province_code": "string", "variable": "string",
                                         "category": "string"})
    except Exception as error:  # pandas raises many types for a bad CSV
        raise WeightingError(f"could not read {path}: {error}") from error
    missing = [c for c in MARGIN_COLUMNS if c not in table]
    if missing:
        raise WeightingError(f"{path}: missing columns {', '.join(missing)} (expected "
                             f"{', '.join(MARGIN_COLUMNS)})")
    counts = pd.to_numeric(table["count"], errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        raise WeightingError(f"{path}: every count must be a number >= 0")
    table = table.assign(count=counts.astype(float),
                         province_code=table["province_code"].str.strip(),
                         category=table["category"].str.strip())
    unknown = sorted(set(table["variable"]) - {AGE_VARIABLE, GENDER_VARIABLE})
    if unknown:
        raise WeightingError(f"{path}: unknown variables {', '.join(unknown)} (age_group, gender)")
    if table.duplicated(["province_code", "variable", "category"]).any():
        raise WeightingError(f"{path}: a (province_code, variable, category) appears twice")
    age = table[table["variable"] == AGE_VARIABLE].set_index(["province_code", "category"])["count"]
    gender = table[table["variable"] == GENDER_VARIABLE].set_index(
        ["province_code", "category"])["count"]
    age_groups = tuple(sorted(age.index.get_level_values("category").unique(),
                              key=lambda label: parse_age_group(label)[0]))
    bad_gender = sorted(set(gender.index.get_level_values("category")) - set(GENDER_CATEGORIES))
    if bad_gender:
        raise WeightingError(f"{path}: gender categories must be female/male, not "
                             f"{', '.join(bad_gender)}")
    provinces = tuple(age.index.get_level_values("province_code").unique())
    if not provinces or age.sum() <= 0:
        raise WeightingError(f"{path}: no age_group counts")
    for province in provinces:
        if gender.get((province, "female"), 0) + gender.get((province, "male"), 0) <= 0:
            raise WeightingError(f"{path}: province {province} has no gender counts")
    full = pd.MultiIndex.from_product([provinces, age_groups], names=["province_code", "category"])
    return Margins(age=age.reindex(full, fill_value=0.0), gender=gender,
                   age_groups=age_groups, provinces=provinces, source=str(path))


def weighting_categories(frame: pd.DataFrame, margins: Margins, province: str = "province_code",
                         age: str = "age", gender: str = "gender") -> pd.DataFrame:
    """Each respondent's margins province (NA if none), age group and gender (or ``unknown``)."""
    index = frame.index
    codes = (frame[province].astype("string").str.strip().str.upper()
             if province in frame else pd.Series(pd.NA, index=index, dtype="string"))
    result = pd.DataFrame({"province": codes.map(margins.province_of()).astype("string")},
                          index=index)
    ages = (pd.to_numeric(frame[age], errors="coerce") if age in frame
            else pd.Series(np.nan, index=index))
    groups = pd.Series(UNKNOWN, index=index, dtype=object)
    for label in margins.age_groups:
        low, high = parse_age_group(label)
        groups[(ages >= low) & (ages < high)] = label
    result["age_group"] = groups
    genders = (pd.to_numeric(frame[gender], errors="coerce") if gender in frame
               else pd.Series(np.nan, index=index))
    result["gender"] = genders.map(GENDER_CODES).fillna(UNKNOWN)
    return result


def _merge_sparse(labels: list[str], counts: dict[str, int]) -> dict[str, str]:
    """Original label -> merged label, merging each group under MIN_CELL with its neighbour."""
    groups = [[label] for label in labels]
    while len(groups) > 1:
        empty = next((i for i, g in enumerate(groups)
                      if sum(counts.get(x, 0) for x in g) < MIN_CELL), None)
        if empty is None:
            break
        other = empty + 1 if empty + 1 < len(groups) else empty - 1
        low, high = sorted((empty, other))
        groups[low:high + 1] = [groups[low] + groups[high]]
    return {label: "+".join(group) for group in groups for label in group}


@dataclass
class WeightingResult:
    weights: pd.Series  # one per row of the weighted frame, mean 1
    participant_ids: pd.Series
    target: dict[str, dict[str, dict[str, float]]]
    achieved: dict[str, dict[str, dict[str, float | None]]]
    unweighted: dict[str, dict[str, dict[str, float | None]]]
    cap: float | None
    n_trimmed: int
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.weights.notna().sum())

    @property
    def design_effect(self) -> float:
        w = self.weights.dropna().to_numpy()
        return float(len(w) * np.sum(w ** 2) / np.sum(w) ** 2) if len(w) else math.nan

    @property
    def effective_n(self) -> float:
        w = self.weights.dropna().to_numpy()
        return float(np.sum(w) ** 2 / np.sum(w ** 2)) if len(w) else math.nan

    def margins_table(self) -> pd.DataFrame:
        """One row per margin: target, unweighted and weighted sample (percent), difference."""
        rows = []
        for variable, by_province in self.target.items():
            for province, categories in by_province.items():
                for category, target in categories.items():
                    achieved = self.achieved[variable][province][category]
                    rows.append({
                        "variable": variable, "province_code": province, "category": category,
                        "target_pct": target,
                        "unweighted_pct": self.unweighted[variable][province][category],
                        "weighted_pct": achieved,
                        "difference_pp": None if achieved is None else achieved - target,
                    })
        return pd.DataFrame(rows)

    def max_abs_difference(self) -> float:
        differences = self.margins_table()["difference_pp"].dropna().abs()
        return float(differences.max()) if len(differences) else math.nan

    def summary(self) -> dict:
        """The JSON of ``python -m analysis weights --json``."""
        weights = self.weights.dropna()
        return {
            "n": self.n,
            "design_effect": self.design_effect,
            "effective_n": self.effective_n,
            "cap": self.cap,
            "n_trimmed": self.n_trimmed,
            "weight_min": float(weights.min()) if len(weights) else None,
            "weight_max": float(weights.max()) if len(weights) else None,
            "units": "percent of adults (of respondents with a known value); the province cells "
                     "of each variable sum to 100, 'all' is their national sum",
            "target_margins": self.target,
            "achieved_margins": self.achieved,
            "unweighted_margins": self.unweighted,
            "max_abs_difference_pp": self.max_abs_difference(),
            "notes": self.notes,
        }


NATIONAL = "all"  # the key of the national margins (sums of the province cells)


def _with_national(by_province: dict[str, dict[str, float | None]],
                   categories: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    national = {c: (None if any(by_province[p][c] is None for p in by_province)
                    else sum(by_province[p][c] for p in by_province)) for c in categories}
    return {**by_province, NATIONAL: national}


def _shares(categories: pd.DataFrame, weights: np.ndarray,
            margins: Margins) -> dict[str, dict[str, dict[str, float | None]]]:
    """The sample's margins as percent of the (weighted) respondents with a known value."""
    w = pd.Series(weights, index=categories.index)
    result = {}
    for variable, column, levels in ((AGE_VARIABLE, "age_group", margins.age_groups),
                                     (GENDER_VARIABLE, "gender", GENDER_CATEGORIES)):
        known = categories[column] != UNKNOWN
        total = float(w[known].sum())
        cells = w[known].groupby([categories["province"][known],
                                  categories[column][known]]).sum()
        by_province = {p: {c: (100 * float(cells.get((p, c), 0.0)) / total if total > 0
                               else None) for c in levels} for p in margins.provinces}
        result[variable] = _with_national(by_province, levels)
    return result


def _targets(margins: Margins) -> dict[str, dict[str, dict[str, float]]]:
    """Census margins as percent of all adults: province x age group, province x gender (the
    province's adult share split by its census female/male ratio)."""
    total = float(margins.age.sum())
    age = {p: {g: 100 * float(margins.age[(p, g)]) / total for g in margins.age_groups}
           for p in margins.provinces}
    gender = {}
    for p in margins.provinces:
        adults = 100 * float(margins.age.loc[p].sum()) / total
        counts = {g: float(margins.gender.get((p, g), 0.0)) for g in GENDER_CATEGORIES}
        gender[p] = {g: adults * counts[g] / sum(counts.values()) for g in GENDER_CATEGORIES}
    return {AGE_VARIABLE: _with_national(age, margins.age_groups),
            GENDER_VARIABLE: _with_national(gender, GENDER_CATEGORIES)}


def _rake_targets(categories: pd.DataFrame, margins: Margins,
                  notes: list[str]) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """weightipy targets (percent) for the two dimensions and each respondent's cell labels."""
    represented = [p for p in margins.provinces if (categories["province"] == p).any()]
    absent = [p for p in margins.provinces if p not in represented]
    if absent:
        share = 100 * float(margins.age.loc[absent].sum()) / float(margins.age.sum())
        notes.append(f"no respondent from {', '.join(absent)} ({share:.2f}% of adults): their "
                     "share goes to the other provinces")
    province_total = margins.age.groupby(level="province_code").sum()[represented]
    province_share = 100 * province_total / province_total.sum()
    age_targets: dict[str, float] = {}
    gender_targets: dict[str, float] = {}
    cells = pd.DataFrame(index=categories.index, columns=[_AGE_DIMENSION, _GENDER_DIMENSION],
                         dtype=object)
    for province in represented:
        rows = categories[categories["province"] == province]
        share = float(province_share[province])
        # Age: sparse cells merged with a neighbour; unknown ages keep their sample share.
        ages = rows["age_group"]
        unknown_age = float((ages == UNKNOWN).mean())
        merged = _merge_sparse(list(margins.age_groups), ages.value_counts().to_dict())
        if len(set(merged.values())) < len(margins.age_groups):
            joined = sorted({m for m in merged.values() if "+" in m and m not in
                             margins.age_groups})
            notes.append(f"{province}: age groups with under {MIN_CELL} respondents merged ("
                         f"{', '.join(joined)})")
        counts = margins.age.loc[province]
        known_total = float(counts.sum())
        for group in margins.age_groups:
            label = f"{province}|{merged[group]}"
            age_targets[label] = age_targets.get(label, 0.0) + (
                share * (1 - unknown_age) * float(counts[group]) / known_total)
        if unknown_age > 0:
            age_targets[f"{province}|{UNKNOWN}"] = share * unknown_age
        cells.loc[rows.index, _AGE_DIMENSION] = [
            f"{province}|{UNKNOWN if a == UNKNOWN else merged[a]}" for a in ages]
        # Gender: the census female/male ratio among those who answered woman or man.
        genders = rows["gender"]
        unknown_gender = float((genders == UNKNOWN).mean())
        present = genders.value_counts()
        census = {g: float(margins.gender.get((province, g), 0.0)) for g in GENDER_CATEGORIES}
        if all(present.get(g, 0) >= MIN_CELL for g in GENDER_CATEGORIES):
            for g in GENDER_CATEGORIES:
                gender_targets[f"{province}|{g}"] = (share * (1 - unknown_gender) * census[g]
                                                     / sum(census.values()))
            labels = [f"{province}|{g}" for g in genders]
        else:
            if unknown_gender < 1:
                notes.append(f"{province}: under {MIN_CELL} women or men; gender not raked "
                             "there")
                gender_targets[f"{province}|known"] = share * (1 - unknown_gender)
            labels = [f"{province}|{UNKNOWN if g == UNKNOWN else 'known'}" for g in genders]
        if unknown_gender > 0:
            gender_targets[f"{province}|{UNKNOWN}"] = share * unknown_gender
        cells.loc[rows.index, _GENDER_DIMENSION] = labels
    return {_AGE_DIMENSION: age_targets, _GENDER_DIMENSION: gender_targets}, cells


def trim_weights(weights: pd.Series, cap: float | None) -> tuple[pd.Series, int]:
    """Weights rescaled to mean 1, those above ``cap`` x the mean set to it (and the rest
    rescaled again, until none is above); returns the weights and how many sit at the cap."""
    weights = weights / weights.mean()
    if cap is None:
        return weights, 0
    for _ in range(1000):
        if weights.max() <= cap * (1 + 1e-9):
            break
        weights = weights.clip(upper=cap)
        weights = weights / weights.mean()
    return weights, int((weights >= cap * (1 - 1e-6)).sum())


def rake_to_margins(frame: pd.DataFrame, margins: Margins, cap: float | None = DEFAULT_CAP,
                    participant_id: str = "participant_id") -> WeightingResult:
    """Rake every row of ``frame`` (already restricted to the sample to weight) to ``margins``.

    ``frame`` needs ``province_code``, ``age`` (years) and ``gender`` (instrument codes, 99
    already missing); see the module docstring for the rules.
    """
    import weightipy  # imported here: only weighting needs it

    if cap is not None and cap <= 1:
        raise WeightingError("the weight cap must be above 1 (times the mean weight)")
    if frame.empty:
        raise WeightingError("no respondent to weight")
    notes: list[str] = []
    categories = weighting_categories(frame, margins)
    in_margins = categories["province"].notna()
    if not in_margins.any():
        raise WeightingError("no respondent has a province of the margins file")
    if (~in_margins).any():
        notes.append(f"{int((~in_margins).sum())} respondents without a province of the margins "
                     "file are not raked (weight 1)")
    for column, label in (("age_group", "age"), ("gender", "gender (woman or man)")):
        unknown = int((categories.loc[in_margins, column] == UNKNOWN).sum())
        if unknown:
            notes.append(f"{unknown} respondents with no usable {label}: kept at their share "
                         "of their province for that margin")
    raked = categories[in_margins]
    targets, cells = _rake_targets(raked, margins, notes)
    # Raked uncapped: weightipy's in-loop cap drives some weights to zero when it binds.
    scheme = weightipy.scheme_from_dict(
        targets, name="census", rim_params={"convcrit": 1e-9, "max_iterations": 2000})
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):  # weightipy prints its convergence messages
        raw = weightipy.weight(cells.reset_index(drop=True), scheme)
    notes.extend(f"weightipy: {line}" for line in captured.getvalue().splitlines()
                 if line.strip())
    weights = pd.Series(1.0, index=frame.index)
    weights[raked.index] = np.asarray(raw, dtype=float)
    weights, n_trimmed = trim_weights(weights, cap)
    if n_trimmed:
        notes.append(f"{n_trimmed} weights trimmed to the cap ({cap:g} x the mean weight)")
    zero = np.ones(len(raked))
    return WeightingResult(
        weights=weights,
        participant_ids=(frame[participant_id].astype("string") if participant_id in frame
                         else pd.Series(frame.index.astype(str), index=frame.index)),
        target=_targets(margins),
        achieved=_shares(raked, weights[raked.index].to_numpy(), margins),
        unweighted=_shares(raked, zero, margins),
        cap=cap, n_trimmed=n_trimmed, notes=notes,
    )


def weight_completes(frame: pd.DataFrame, margins: Margins, variables: StudyVariables,
                     exclusions: str = "preregistered",
                     cap: float | None = DEFAULT_CAP) -> tuple[WeightingResult, list[str]]:
    """Rake the completed respondents of a prepared export (``analysis.io.prepare``), after the
    exclusions of ``exclusions`` (``preregistered``: rows with ``excluded == 1`` left out)."""
    from analysis.exclusions import apply_exclusions

    sample, notes = apply_exclusions(frame, exclusions)
    if variables.state in sample:
        sample = sample[sample[variables.state] == variables.completed_state]
    return rake_to_margins(sample, margins, cap, variables.participant_id), notes


def format_margins(result: WeightingResult) -> str:
    """The achieved margins against the targets, then the design effect and effective n."""
    table = result.margins_table()
    lines = [f"{'margin':<28}{'target %':>10}{'sample %':>10}{'weighted %':>12}{'diff pp':>9}"]
    for row in table.itertuples(index=False):
        def cell(value: float | None, width: int) -> str:
            return f"{value:>{width}.2f}" if value is not None and not pd.isna(value) else \
                " " * (width - 1) + "-"
        lines.append(f"{row.variable + ' ' + row.province_code + ' ' + row.category:<28}"
                     f"{cell(row.target_pct, 10)}{cell(row.unweighted_pct, 10)}"
                     f"{cell(row.weighted_pct, 12)}{cell(row.difference_pp, 9)}")
    summary = result.summary()
    lines += [
        f"largest difference: {summary['max_abs_difference_pp']:.3f} percentage points",
        f"n = {result.n}; design effect (Kish) = {result.design_effect:.3f}; "
        f"effective n = {result.effective_n:.1f}",
        f"weights: min {summary['weight_min']:.3f}, max {summary['weight_max']:.3f}, cap "
        + (f"{result.cap:g} x mean ({result.n_trimmed} trimmed)" if result.cap else "none"),
        *(f"note: {note}" for note in result.notes),
    ]
    return "\n".join(lines)
