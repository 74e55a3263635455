"""Binary outcomes: linear probability model (robust SEs) next to logit average marginal effects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.design import arm_dummies, arm_term
from analysis.effects import MIN_ARM_SIZE, analysis_sample, fit_arm_model
from analysis.estimation import EstimationError, fit_logit_ame
from analysis.variables import StudyVariables


def binary_effects(frame: pd.DataFrame, variables: StudyVariables,
                   outcomes: Sequence[str] | None = None,
                   se_type: str = "HC2") -> tuple[pd.DataFrame, list[str]]:
    """For each 0/1 outcome and arm: LPM effect and logit AME versus control, side by side."""
    if outcomes is None:
        outcomes = [o.name for o in variables.outcomes if o.binary]
    rows: list[dict] = []
    notes: list[str] = []
    for outcome in outcomes:
        if outcome not in frame:
            notes.append(f"{outcome}: not in the data; skipped")
            continue
        values = pd.to_numeric(frame[outcome], errors="coerce")
        if not values.dropna().isin([0, 1]).all():
            notes.append(f"{outcome}: not coded 0/1; skipped")
            continue
        try:
            lpm = fit_arm_model(frame, outcome, variables, se_type)
        except EstimationError as error:
            notes.append(f"{error}; skipped")
            continue
        notes.extend(lpm.notes)
        lpm_table = lpm.fit.coefficient_table()
        sample = analysis_sample(frame, outcome, variables)
        sample = sample[sample[variables.arm].isin([variables.control_arm, *lpm.arms])]
        dummies = arm_dummies(sample[variables.arm], lpm.arms, variables.arm)
        design = pd.concat([pd.DataFrame({"Intercept": 1.0}, index=sample.index), dummies],
                           axis=1)
        try:
            ame = fit_logit_ame(sample[outcome].astype(float), design, list(dummies.columns))
        except EstimationError as error:
            notes.append(f"{outcome}: {error}; logit AMEs not reported")
            ame = pd.DataFrame()
        for arm in lpm.arms:
            term = arm_term(arm, variables.arm)
            row = {"outcome": outcome, "arm": arm, "n": lpm.fit.nobs,
                   "n_arm": lpm.n_by_arm[arm], "control_rate": lpm.control_mean}
            for key, value in lpm_table.loc[term].items():
                row[f"lpm_{key}"] = value
            if term in ame.index and lpm.n_by_arm[arm] >= MIN_ARM_SIZE:
                for key in ("ame", "se", "p", "ci_low", "ci_high"):
                    row[f"logit_{key}"] = ame.loc[term, key]
            else:
                for key in ("ame", "se", "p", "ci_low", "ci_high"):
                    row[f"logit_{key}"] = np.nan
            rows.append(row)
    return pd.DataFrame(rows), notes
