"""Average treatment effects of each arm versus control, and the planned contrasts H1a-H1c."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.design import arm_dummies, arm_term, is_full_rank, lin_design, prepare_covariates
from analysis.estimation import EstimationError, LinearFit, fit_ols
from analysis.variables import StudyVariables

MIN_ARM_SIZE = 2  # an arm needs two respondents for a variance (and HC2 leverage below one)


@dataclass
class ArmModel:
    outcome: str
    estimator: str  # "unadjusted" | "lin"
    fit: LinearFit
    arms: list[str]
    n_by_arm: dict[str, int]
    control_mean: float
    notes: list[str] = field(default_factory=list)


def analysis_sample(frame: pd.DataFrame, outcome: str, variables: StudyVariables) -> pd.DataFrame:
    """Assigned respondents (any arm of the study) with a non-missing outcome."""
    arm = frame[variables.arm].astype("string")
    keep = arm.isin(variables.arms).fillna(False) & frame[outcome].notna()
    return frame.loc[keep]


def fit_arm_model(frame: pd.DataFrame, outcome: str, variables: StudyVariables,
                  se_type: str = "HC2", covariates: Sequence[str] | None = None,
                  weights: pd.Series | None = None) -> ArmModel:
    """Regress the outcome on arm dummies (control = reference), optionally Lin-adjusted;
    with ``weights`` (indexed like ``frame``), weighted least squares on the weighted rows.

    Arms with fewer than two respondents are dropped with a note; if covariate adjustment makes
    the design rank-deficient the unadjusted model is fitted instead, with a note.
    """
    if outcome not in frame:
        raise EstimationError(f"outcome {outcome} is not in the data")
    sample = analysis_sample(frame, outcome, variables)
    if weights is not None:
        sample = sample[weights.reindex(sample.index).notna()]
    notes: list[str] = []
    counts = sample[variables.arm].value_counts()
    n_by_arm = {arm: int(counts.get(arm, 0)) for arm in variables.arms}
    if n_by_arm[variables.control_arm] < MIN_ARM_SIZE:
        raise EstimationError(f"{outcome}: control arm has {n_by_arm[variables.control_arm]} "
                              "respondents with this outcome")
    arms = [a for a in variables.treatment_arms if n_by_arm[a] >= MIN_ARM_SIZE]
    for arm in variables.treatment_arms:
        if arm not in arms:
            notes.append(f"{outcome}: arm {arm} left out ({n_by_arm[arm]} respondents)")
    if not arms:
        raise EstimationError(f"{outcome}: no treatment arm has {MIN_ARM_SIZE}+ respondents")
    sample = sample[sample[variables.arm].isin([variables.control_arm, *arms])]
    y = sample[outcome].astype(float)
    if y.std(ddof=0) == 0:
        raise EstimationError(f"{outcome}: outcome is constant in the analysis sample")
    dummies = arm_dummies(sample[variables.arm], arms, variables.arm)
    design = pd.concat([pd.DataFrame({"Intercept": 1.0}, index=sample.index), dummies], axis=1)
    estimator = "unadjusted"
    if covariates:
        covariate_matrix, covariate_notes = prepare_covariates(sample, covariates, center=True)
        notes.extend(f"{outcome}: {note}" for note in covariate_notes)
        adjusted = lin_design(dummies, covariate_matrix)
        if covariate_matrix.shape[1] == 0:
            notes.append(f"{outcome}: no usable covariates; Lin adjustment skipped")
        elif not is_full_rank(adjusted) or adjusted.shape[0] - adjusted.shape[1] < 2:
            notes.append(f"{outcome}: Lin adjustment skipped (too few respondents per arm for "
                         f"{covariate_matrix.shape[1]} covariates)")
        else:
            design, estimator = adjusted, "lin"
    w = None if weights is None else weights.reindex(sample.index)
    fit = fit_ols(y, design, se_type, weights=w)
    control = (sample[variables.arm] == variables.control_arm).to_numpy()
    control_mean = float(np.average(y[control], weights=None if w is None else w[control]))
    return ArmModel(outcome, estimator, fit, arms, n_by_arm, control_mean, notes)


def effects_rows(model: ArmModel, variables: StudyVariables) -> list[dict]:
    table = model.fit.coefficient_table()
    spec = variables.outcome(model.outcome)
    rows = []
    for arm in model.arms:
        row = table.loc[arm_term(arm, variables.arm)].to_dict()
        rows.append({
            "outcome": model.outcome,
            "family": spec.family if spec else "",
            "binary": bool(spec.binary) if spec else False,
            "estimator": model.estimator,
            "arm": arm,
            **row,
            "n": model.fit.nobs,
            "n_arm": model.n_by_arm[arm],
            "n_control": model.n_by_arm[variables.control_arm],
            "control_mean": model.control_mean,
            "se_type": model.fit.se_type,
        })
    return rows


def contrast_rows(model: ArmModel, variables: StudyVariables) -> tuple[list[dict], list[str]]:
    rows, notes = [], []
    spec = variables.outcome(model.outcome)
    for contrast in variables.contrasts:
        needed = [arm for arm, _ in contrast.weights]
        absent = [arm for arm in needed if arm not in model.arms]
        if absent:
            notes.append(f"{model.outcome}: {contrast.name} skipped (no estimate for "
                         f"{', '.join(absent)})")
            continue
        weights = {arm_term(arm, variables.arm): w for arm, w in contrast.weights}
        result = model.fit.combination(weights, alternative=contrast.alternative)
        two_sided = model.fit.combination(weights, alternative="two-sided")
        rows.append({
            "outcome": model.outcome,
            "family": spec.family if spec else "",
            "estimator": model.estimator,
            "hypothesis": contrast.hypothesis,
            "contrast": contrast.name,
            "direction": contrast.label,
            "alternative": contrast.alternative,
            "estimate": result["estimate"], "se": result["se"], "t": result["t"],
            "p_one_sided": result["p"], "p_two_sided": two_sided["p"],
            "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "n": model.fit.nobs, "se_type": model.fit.se_type,
        })
    return rows, notes


def estimate_effects(frame: pd.DataFrame, variables: StudyVariables,
                     outcomes: Sequence[str] | None = None, se_type: str = "HC2",
                     covariates: Sequence[str] | None = None,
                     weights: pd.Series | None = None,
                     ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Arm-vs-control effects and planned contrasts for each outcome (skipping impossible ones).

    Returns (effects, contrasts, notes). With ``covariates`` both the unadjusted and Lin-adjusted
    estimates are returned (column ``estimator``).
    """
    outcomes = list(outcomes) if outcomes is not None else [o.name for o in variables.outcomes]
    effect_rows: list[dict] = []
    contrast_table: list[dict] = []
    notes: list[str] = []
    for outcome in outcomes:
        if outcome not in frame:
            notes.append(f"{outcome}: not in the data; skipped")
            continue
        specifications: list[Sequence[str] | None] = [None]
        if covariates:
            specifications.append(covariates)
        for adjustment in specifications:
            try:
                model = fit_arm_model(frame, outcome, variables, se_type, adjustment, weights)
            except EstimationError as error:
                notes.append(f"{error}; skipped")
                break
            if adjustment and model.estimator != "lin":
                notes.extend(model.notes)
                continue  # the unadjusted model is already in the table
            notes.extend(model.notes)
            effect_rows.extend(effects_rows(model, variables))
            rows, contrast_notes = contrast_rows(model, variables)
            contrast_table.extend(rows)
            notes.extend(contrast_notes)
    return pd.DataFrame(effect_rows), pd.DataFrame(contrast_table), list(dict.fromkeys(notes))


def intersection_union(contrasts: pd.DataFrame, hypothesis: str = "H1a") -> pd.DataFrame:
    """H1a says house beats *both* landmarks: its p-value is the larger of the two one-sided p's."""
    if contrasts.empty:
        return contrasts
    subset = contrasts[contrasts["hypothesis"] == hypothesis]
    grouped = subset.groupby(["outcome", "estimator"], sort=False)["p_one_sided"]
    out = grouped.agg(["max", "count"]).reset_index()
    out = out.rename(columns={"max": "p_intersection_union", "count": "n_contrasts"})
    out["hypothesis"] = hypothesis
    return out[out["n_contrasts"] == 2].drop(columns="n_contrasts")
