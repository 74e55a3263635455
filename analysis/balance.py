"""Randomization checks: balance across arms, attrition after assignment, the CONSORT funnel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.design import arm_dummies
from analysis.estimation import EstimationError, fit_ols, wald_test
from analysis.variables import StudyVariables


def assigned(frame: pd.DataFrame, variables: StudyVariables) -> pd.DataFrame:
    arm = frame[variables.arm].astype("string")
    return frame.loc[arm.isin(variables.arms).fillna(False)]


def _standardized_difference(a: pd.Series, b: pd.Series) -> float:
    """(mean_a - mean_b) / sqrt((var_a + var_b) / 2), the usual balance metric."""
    a, b = a.dropna(), b.dropna()
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else float("nan")


def _arm_omnibus(values: pd.Series, arm_values: pd.Series, arms: Sequence[str],
                 se_type: str) -> dict[str, float]:
    """Robust joint F test that all arm dummies are zero in a regression of x on arm."""
    keep = values.notna()
    present = [a for a in arms if (arm_values[keep] == a).sum() >= 2]
    if len(present) < 1 or keep.sum() < len(present) + 3 or values[keep].std() == 0:
        return {"F": np.nan, "df_num": np.nan, "df_den": np.nan, "p": np.nan}
    dummies = arm_dummies(arm_values[keep], present)
    design = pd.concat([pd.DataFrame({"Intercept": 1.0}, index=dummies.index), dummies], axis=1)
    try:
        fit = fit_ols(values[keep], design, se_type)
    except EstimationError:
        return {"F": np.nan, "df_num": np.nan, "df_den": np.nan, "p": np.nan}
    return wald_test(fit, list(dummies.columns))


def balance_table(frame: pd.DataFrame, variables: StudyVariables, se_type: str = "HC2",
                  continuous: Sequence[str] | None = None,
                  categorical: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per covariate (one per level for categoricals): arm means/shares, the largest
    standardized difference versus control, and an omnibus test across arms.

    Continuous: robust joint F test of the arm dummies. Categorical: chi-square test of the
    arm x category table (one test repeated on each level's row).
    """
    data = assigned(frame, variables)
    arms = [a for a in variables.arms if (data[variables.arm] == a).any()]
    arm_values = data[variables.arm].astype("string")
    control = arm_values == variables.control_arm
    continuous = variables.balance_continuous if continuous is None else continuous
    categorical = variables.balance_categorical if categorical is None else categorical
    treatment = [a for a in arms if a != variables.control_arm]
    rows: list[dict] = []
    for name in continuous:
        if name not in data:
            continue
        values = pd.to_numeric(data[name], errors="coerce").astype(float)
        test = _arm_omnibus(values, arm_values, treatment, se_type)
        row: dict = {"variable": name, "level": "", "type": "continuous",
                     "n": int(values.notna().sum())}
        row.update({f"mean_{a}": values[arm_values == a].mean() for a in arms})
        diffs = {a: _standardized_difference(values[arm_values == a], values[control])
                 for a in treatment}
        row.update({f"std_diff_{a}": d for a, d in diffs.items()})
        row["max_abs_std_diff"] = np.nanmax(np.abs(list(diffs.values()))) if any(
            np.isfinite(list(diffs.values()))) else np.nan
        row.update({"test": "robust F (arm dummies)", "statistic": test["F"], "p": test["p"]})
        rows.append(row)
    for name in categorical:
        if name not in data:
            continue
        values = data[name]
        valid = values.notna()
        table = pd.crosstab(values[valid], arm_values[valid])
        table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
        if table.shape[0] >= 2 and table.shape[1] >= 2:
            chi2, p_value, _, _ = stats.chi2_contingency(table.to_numpy())
        else:
            chi2, p_value = np.nan, np.nan
        for level in table.index:
            indicator = (values == level).astype(float).where(valid)
            row = {"variable": name, "level": _level(level), "type": "categorical",
                   "n": int(valid.sum())}
            row.update({f"mean_{a}": indicator[arm_values == a].mean() for a in arms})
            diffs = {a: _standardized_difference(indicator[arm_values == a], indicator[control])
                     for a in treatment}
            row.update({f"std_diff_{a}": d for a, d in diffs.items()})
            finite = [abs(d) for d in diffs.values() if np.isfinite(d)]
            row["max_abs_std_diff"] = max(finite) if finite else np.nan
            row.update({"test": "chi-square (arm x category)", "statistic": chi2, "p": p_value})
            rows.append(row)
    return pd.DataFrame(rows)


def _level(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def attrition_table(frame: pd.DataFrame, variables: StudyVariables,
                    se_type: str = "HC2") -> tuple[pd.DataFrame, dict[str, float]]:
    """Among assigned respondents: completed and attrited by arm, plus tests of differential
    attrition (chi-square of arm x attrited, and a robust joint F of arm dummies in an LPM)."""
    data = assigned(frame, variables)
    arm_values = data[variables.arm].astype("string")
    attrited = (data[variables.state].astype("string") != variables.completed_state)
    attrited = attrited.fillna(True).astype(float)
    rows = []
    for arm in variables.arms:
        in_arm = arm_values == arm
        n = int(in_arm.sum())
        n_attrited = int(attrited[in_arm].sum())
        rows.append({"arm": arm, "assigned": n, "completed": n - n_attrited,
                     "attrited": n_attrited, "attrition_rate": n_attrited / n if n else np.nan})
    table = pd.DataFrame(rows)
    total = table[["assigned", "completed", "attrited"]].sum()
    table = pd.concat([table, pd.DataFrame([{
        "arm": "total", **total.to_dict(),
        "attrition_rate": total["attrited"] / total["assigned"] if total["assigned"] else np.nan,
    }])], ignore_index=True)
    tests: dict[str, float] = {"chi2": np.nan, "chi2_p": np.nan, "F": np.nan, "F_p": np.nan}
    counts = table[table["arm"] != "total"]
    counts = counts[counts["assigned"] > 0]
    contingency = counts[["completed", "attrited"]].to_numpy()
    if len(counts) >= 2 and contingency.sum(axis=0).min() > 0:
        chi2, p_value, _, _ = stats.chi2_contingency(contingency)
        tests.update({"chi2": float(chi2), "chi2_p": float(p_value)})
    treatment = [a for a in variables.treatment_arms if (arm_values == a).sum() >= 2]
    if attrited.std() > 0 and treatment:
        result = _arm_omnibus(attrited, arm_values, treatment, se_type)
        tests.update({"F": result["F"], "F_p": result["p"]})
    return table, tests


def funnel_table(frame: pd.DataFrame, variables: StudyVariables) -> pd.DataFrame:
    """CONSORT-style counts: every row of the export, by state, then assigned/completed per arm.

    Declined consents are not in the export (only an anonymous count is kept), so the funnel
    starts at the respondents who have a row.
    """
    state = frame[variables.state].astype("string").fillna("unknown")
    arm_values = frame[variables.arm].astype("string")
    is_assigned = arm_values.isin(variables.arms).fillna(False)
    rows = [{"stage": "in export (entered)", "arm": "all", "n": len(frame)}]
    # Without the timestamp column, everyone past the consent page consented.
    consented = frame["consented_at"].notna() if "consented_at" in frame else state != "started"
    rows.append({"stage": "consented", "arm": "all", "n": int(consented.sum())})
    for value, count in state[~is_assigned].value_counts().sort_index().items():
        rows.append({"stage": f"not assigned: {value}", "arm": "all", "n": int(count)})
    reason_column = next((c for c in ("screenout_reason", "screened_out_reason")
                          if c in frame), None)
    if reason_column is not None:
        reasons = frame.loc[state == "screened_out", reason_column].astype("string").fillna("?")
        if "screenout_detail" in frame:  # what was missing, e.g. "material_missing (house)"
            detail = frame.loc[state == "screened_out", "screenout_detail"].astype("string")
            reasons = reasons.where(detail.isna() | (detail == ""), reasons + " (" + detail + ")")
        for value, count in reasons.value_counts().sort_index().items():
            rows.append({"stage": f"screened out because: {value}", "arm": "all",
                         "n": int(count)})
    rows.append({"stage": "assigned", "arm": "all", "n": int(is_assigned.sum())})
    completed = (state == variables.completed_state) & is_assigned
    for arm in variables.arms:
        in_arm = arm_values == arm
        rows.append({"stage": "assigned", "arm": arm, "n": int(in_arm.sum())})
        if "exposure_ms" in frame and arm != variables.control_arm:
            exposed = in_arm & pd.to_numeric(frame["exposure_ms"], errors="coerce").notna()
            rows.append({"stage": "exposed (image page submitted)", "arm": arm,
                         "n": int(exposed.sum())})
        rows.append({"stage": "completed", "arm": arm, "n": int((completed & in_arm).sum())})
        for value, count in state[in_arm & ~completed].value_counts().sort_index().items():
            rows.append({"stage": f"attrited: {value}", "arm": arm, "n": int(count)})
    rows.append({"stage": "completed", "arm": "all", "n": int(completed.sum())})
    return pd.DataFrame(rows)
