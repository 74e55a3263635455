"""Respondent-quality flags and the pre-registered exclusions, as the export records them.

The platform writes two columns (issue 24): ``quality_flags``, the names of the flags a
respondent raised, ``;``-separated (empty when none), and ``excluded`` (0/1), the study's
exclusion rule frozen when it opened. The analysis never recomputes either: it applies
``excluded`` (``--exclusions preregistered``) or nobody (``--exclusions none``), and checks that
the flags are balanced across arms: a flag whose rate differs by arm is raised by the treatment
itself (post-treatment selection), so excluding on it can bias the effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.variables import StudyVariables

QUALITY_FLAGS: tuple[str, ...] = ("speeding", "straight_lining", "attention_failed",
                                  "duplicate_taker", "honeypot", "too_fast")
FLAGS_COLUMN = "quality_flags"
EXCLUDED_COLUMN = "excluded"
EXCLUSION_MODES: tuple[str, ...] = ("preregistered", "none")
# Chi-square when every expected count is at least this, Fisher's exact test otherwise.
MIN_EXPECTED = 5
FISHER_RESAMPLES = 9_999
BALANCE_ALPHA = 0.05


def has_exclusion_columns(frame: pd.DataFrame) -> bool:
    return EXCLUDED_COLUMN in frame


def excluded_mask(frame: pd.DataFrame) -> pd.Series:
    """True where the frozen rule excludes the respondent (nobody for an older export)."""
    if EXCLUDED_COLUMN not in frame:
        return pd.Series(False, index=frame.index)
    values = pd.to_numeric(frame[EXCLUDED_COLUMN], errors="coerce")
    return (values == 1).fillna(False).astype(bool)


def apply_exclusions(frame: pd.DataFrame, mode: str) -> tuple[pd.DataFrame, list[str]]:
    """The sample for ``mode`` and notes on what was done (a warning for an older export)."""
    if mode not in EXCLUSION_MODES:
        raise ValueError(f"exclusions must be one of {', '.join(EXCLUSION_MODES)}, not {mode!r}")
    if mode == "none":
        return frame, ["exclusions: none (every respondent kept)"]
    if not has_exclusion_columns(frame):
        return frame, [f"WARNING: the export has no '{EXCLUDED_COLUMN}' column (an export from "
                       "before quality flags): no pre-registered exclusion applied, everyone "
                       "kept"]
    mask = excluded_mask(frame)
    return frame[~mask], [f"exclusions: pre-registered rule, {int(mask.sum())} of {len(frame)} "
                          "respondents excluded (excluded == 1)"]


def flag_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per flag (the known ones first, then any other name found), plus
    ``excluded``; empty when the export has neither column."""
    columns: dict[str, pd.Series] = {}
    if FLAGS_COLUMN in frame:
        raw = frame[FLAGS_COLUMN].astype("string").fillna("")
        names = raw.str.split(";").map(lambda parts: {p.strip() for p in parts if p.strip()})
        found = set().union(*names) if len(names) else set()
        for flag in (*QUALITY_FLAGS, *sorted(found - set(QUALITY_FLAGS))):
            columns[flag] = names.map(lambda s, flag=flag: int(flag in s)).astype(int)
    if EXCLUDED_COLUMN in frame:
        columns[EXCLUDED_COLUMN] = excluded_mask(frame).astype(int)
    return pd.DataFrame(columns, index=frame.index)


def independence_test(table: np.ndarray) -> tuple[str, float, float]:
    """(test name, statistic, p) for a flag x arm table of counts; NaN when nobody is flagged
    (or everybody is)."""
    table = np.asarray(table, dtype=int)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return "none", float("nan"), float("nan")
    expected = stats.contingency.expected_freq(table)
    if expected.min() >= MIN_EXPECTED:
        result = stats.chi2_contingency(table, correction=False)
        return "chi-square", float(result.statistic), float(result.pvalue)
    if table.shape == (2, 2):
        result = stats.fisher_exact(table)
        return "Fisher exact", float(result.statistic), float(result.pvalue)
    method = stats.MonteCarloMethod(n_resamples=FISHER_RESAMPLES, rng=np.random.default_rng(0))
    result = stats.fisher_exact(table, method=method)
    return "Fisher exact (Monte Carlo)", float(result.statistic), float(result.pvalue)


def flag_balance_table(frame: pd.DataFrame, variables: StudyVariables) -> pd.DataFrame:
    """Each flag's count and rate by arm among assigned respondents, with a test of equal
    rates; ``post_treatment_selection`` is True where the rates differ (p < 0.05)."""
    flags = flag_indicators(frame)
    if flags.empty:
        return pd.DataFrame()
    arm = frame[variables.arm].astype("string")
    assigned = arm.isin(variables.arms).fillna(False).astype(bool)
    flags, arm = flags[assigned], arm[assigned]
    arms = [a for a in variables.arms if (arm == a).any()]
    rows = []
    for flag in flags.columns:
        counts = flags[flag].groupby(arm).agg(["sum", "count"]).reindex(arms, fill_value=0)
        table = np.vstack([counts["sum"].to_numpy(), (counts["count"] - counts["sum"]).to_numpy()])
        test, statistic, p = independence_test(table)
        row: dict[str, object] = {"flag": flag, "n_flagged": int(counts["sum"].sum())}
        for name in arms:
            total = int(counts.loc[name, "count"])
            row[f"rate_{name}"] = counts.loc[name, "sum"] / total if total else float("nan")
        differs = bool(p < BALANCE_ALPHA) if np.isfinite(p) else False
        row.update({"test": test, "statistic": statistic, "p": p,
                    "post_treatment_selection": differs})
        rows.append(row)
    return pd.DataFrame(rows)
