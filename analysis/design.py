"""Design matrices with formula-style column names (``Intercept``, ``arm[T.house]``, ``X:W``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def arm_term(arm: str, arm_column: str = "arm") -> str:
    return f"{arm_column}[T.{arm}]"


def arm_dummies(arm_values: pd.Series, treatment_arms: Sequence[str],
                arm_column: str = "arm") -> pd.DataFrame:
    """0/1 columns for each treatment arm (the control arm is the reference)."""
    values = arm_values.astype("string")
    return pd.DataFrame(
        {arm_term(arm, arm_column): (values == arm).fillna(False).astype(float)
         for arm in treatment_arms},
        index=arm_values.index,
    )


def prepare_covariates(frame: pd.DataFrame, covariates: Sequence[str],
                       center: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Numeric covariates, mean-imputed with a missingness indicator, optionally centred.

    Imputing pre-treatment covariates keeps every respondent in the sample (listwise deletion on
    covariates would change the estimand). Constant columns carry no information and are dropped.
    Returns the matrix and notes on what was dropped.
    """
    notes: list[str] = []
    columns: dict[str, pd.Series] = {}
    for name in covariates:
        if name not in frame:
            notes.append(f"covariate {name} is not in the data; left out")
            continue
        values = pd.to_numeric(frame[name], errors="coerce").astype(float)
        if values.notna().sum() == 0:
            notes.append(f"covariate {name} has no numeric values; left out")
            continue
        missing = values.isna()
        filled = values.fillna(values.mean())
        if filled.std(ddof=0) > 0:
            columns[name] = filled - filled.mean() if center else filled
        else:
            notes.append(f"covariate {name} is constant; left out")
        if missing.any() and not missing.all():
            indicator = missing.astype(float)
            columns[f"{name}_missing"] = indicator - indicator.mean() if center else indicator
    return pd.DataFrame(columns, index=frame.index), notes


def lin_design(dummies: pd.DataFrame, covariates: pd.DataFrame) -> pd.DataFrame:
    """Lin (2013): intercept, arm dummies, centred covariates and every dummy x covariate.

    With covariates centred at the full-sample mean, each arm coefficient is the adjusted
    average treatment effect of that arm versus control.
    """
    parts = [pd.DataFrame({"Intercept": 1.0}, index=dummies.index), dummies, covariates]
    interactions = {
        f"{d}:{c}": dummies[d] * covariates[c] for d in dummies.columns for c in covariates.columns
    }
    parts.append(pd.DataFrame(interactions, index=dummies.index))
    return pd.concat(parts, axis=1)


def is_full_rank(design: pd.DataFrame) -> bool:
    values = design.to_numpy(dtype=float)
    return values.shape[0] > values.shape[1] and np.linalg.matrix_rank(values) == values.shape[1]
