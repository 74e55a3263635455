"""Moderated regression: Y ~ X * W (+ covariates), simple slopes and Johnson-Neyman regions.

Conditional effect of X at W = w: b_X + w * b_{X:W}, with delta-method variance
Var(b_X) + w^2 Var(b_{X:W}) + 2 w Cov(b_X, b_{X:W}) under the chosen (robust) covariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.design import arm_dummies, arm_term, prepare_covariates
from analysis.estimation import EstimationError, LinearFit, fit_ols


@dataclass
class ModerationResult:
    outcome: str
    moderator: str
    categorical: bool
    fit: LinearFit
    focal_terms: list[str]
    conditional_effects: pd.DataFrame  # focal, moderator_value, effect, se, p, ci_low, ci_high
    johnson_neyman: dict[str, dict]  # focal term -> {"bounds": [...], "significant_where": str}
    moderator_range: tuple[float, float] | None
    notes: list[str] = field(default_factory=list)


def moderator_term(moderator: str, level: object | None = None) -> str:
    return moderator if level is None else f"C({moderator})[T.{_level_text(level)}]"


def _level_text(level: object) -> str:
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)


def default_moderator_values(values: pd.Series) -> list[float]:
    mean, sd = float(values.mean()), float(values.std())
    if not np.isfinite(sd) or sd == 0:
        return [mean]
    return [mean - sd, mean, mean + sd]


def johnson_neyman(b_focal: float, b_interaction: float, var_focal: float, var_interaction: float,
                   cov_focal_interaction: float, critical: float,
                   moderator: str = "W", observed: tuple[float, float] | None = None) -> dict:
    """Values of W where the conditional effect is significant: (b1 + b3 w)^2 > t^2 Var(w).

    That is a quadratic inequality a w^2 + b w + c > 0 with a = b3^2 - t^2 V33,
    b = 2 (b1 b3 - t^2 V13), c = b1^2 - t^2 V11. The bounds are its real roots.
    """
    t2 = critical**2
    a = b_interaction**2 - t2 * var_interaction
    b = 2 * (b_focal * b_interaction - t2 * cov_focal_interaction)
    c = b_focal**2 - t2 * var_focal
    range_text = ""
    if observed is not None:
        range_text = f" (observed range {observed[0]:.4g} to {observed[1]:.4g})"
    if not all(np.isfinite(v) for v in (a, b, c)):
        return {"bounds": [], "significant_where": "undetermined (standard errors unavailable)"}
    scale = max(abs(a), abs(b), abs(c), 1e-300)
    if abs(a) <= 1e-12 * scale:
        if abs(b) <= 1e-12 * scale:
            where = "everywhere" if c > 0 else "nowhere"
            return {"bounds": [], "significant_where": where + range_text}
        root = -c / b
        side = ">" if b > 0 else "<"
        return {"bounds": [float(root)],
                "significant_where": f"{moderator} {side} {root:.4g}{range_text}"}
    discriminant = b * b - 4 * a * c
    if discriminant < 0:
        where = "everywhere" if a > 0 else "nowhere"
        return {"bounds": [], "significant_where": where + range_text}
    sqrt_disc = np.sqrt(discriminant)
    low, high = sorted(((-b - sqrt_disc) / (2 * a), (-b + sqrt_disc) / (2 * a)))
    if a > 0:
        where = f"{moderator} < {low:.4g} or {moderator} > {high:.4g}"
    else:
        where = f"{low:.4g} < {moderator} < {high:.4g}"
    return {"bounds": [float(low), float(high)], "significant_where": where + range_text}


def significant_intervals(result: ModerationResult, focal: str,
                          level: float = 0.95) -> list[tuple[float, float]]:
    """Parts of the observed moderator range where the focal effect is significant.

    The Johnson-Neyman bounds split the line into pieces of constant significance; each piece
    inside the observed range is checked at its midpoint.
    """
    if result.categorical or result.moderator_range is None:
        return []
    low, high = result.moderator_range
    fit = result.fit
    interaction = f"{focal}:{result.moderator}"
    crit = stats.t.ppf(0.5 + level / 2, fit.df_resid)
    cuts = sorted({low, high, *(b for b in result.johnson_neyman[focal]["bounds"]
                                if low < b < high)})
    intervals: list[tuple[float, float]] = []
    for start, end in zip(cuts[:-1], cuts[1:], strict=True):
        w = (start + end) / 2
        (effect,), (se,) = fit.estimates([{focal: 1.0, interaction: w}])
        if se > 0 and abs(effect) / se > crit:
            if intervals and intervals[-1][1] == start:
                intervals[-1] = (intervals[-1][0], end)
            else:
                intervals.append((start, end))
    return intervals


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        raise EstimationError(f"column {column!r} is not in the data")
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    converted = pd.to_numeric(values, errors="coerce")
    if converted[values.notna()].isna().any():
        raise EstimationError(f"column {column!r} is not numeric")
    return converted.astype(float)


def fit_moderated(y: pd.Series, focal: pd.DataFrame, moderator_values: pd.Series,
                  moderator: str, categorical: bool = False,
                  covariates: pd.DataFrame | None = None, se_type: str = "HC2",
                  at: Sequence[object] | None = None, outcome: str = "Y",
                  level: float = 0.95) -> ModerationResult:
    """The general case: one or more focal columns (e.g. arm dummies), each interacted with W."""
    index = y.index
    parts = [pd.DataFrame({"Intercept": 1.0}, index=index), focal]
    notes: list[str] = []
    if categorical:
        levels = sorted(moderator_values.dropna().unique().tolist())
        if len(levels) < 2:
            raise EstimationError(f"moderator {moderator!r} has fewer than two levels")
        base, others = levels[0], levels[1:]
        w_columns = pd.DataFrame(
            {moderator_term(moderator, lvl): (moderator_values == lvl).astype(float)
             for lvl in others}, index=index)
        parts.append(w_columns)
        parts.append(pd.DataFrame({f"{f}:{w}": focal[f] * w_columns[w]
                                   for f in focal.columns for w in w_columns.columns},
                                  index=index))
    else:
        parts.append(pd.DataFrame({moderator: moderator_values}, index=index))
        parts.append(pd.DataFrame({f"{f}:{moderator}": focal[f] * moderator_values
                                   for f in focal.columns}, index=index))
    if covariates is not None and covariates.shape[1]:
        parts.append(covariates)
    design = pd.concat(parts, axis=1)
    fit = fit_ols(y, design, se_type)
    crit = float(stats.t.ppf(0.5 + level / 2, fit.df_resid))
    params, cov = fit.params.to_numpy(), fit.cov.to_numpy()
    position = {name: i for i, name in enumerate(fit.params.index)}  # for the Johnson-Neyman bounds
    rows: list[dict] = []
    jn: dict[str, dict] = {}
    observed: tuple[float, float] | None = None
    if categorical:
        wanted = list(at) if at is not None else levels
        by_text = {_level_text(lvl): lvl for lvl in levels}
        for value in wanted:
            key = _level_text(value)
            if key not in by_text:
                raise EstimationError(f"moderator {moderator!r} has no level {value!r}")
            lvl = by_text[key]
            for f in focal.columns:
                weights = {f: 1.0}
                if lvl != base:
                    weights[f"{f}:{moderator_term(moderator, lvl)}"] = 1.0
                result = fit.combination(weights, level=level)
                rows.append({"focal": f, "moderator_value": _plain(lvl), **result})
        for f in focal.columns:
            jn[f] = {"bounds": [], "significant_where":
                     "not applicable (categorical moderator): see conditional effects by level"}
    else:
        observed = (float(moderator_values.min()), float(moderator_values.max()))
        values = [float(v) for v in at] if at is not None else default_moderator_values(
            moderator_values)
        for f in focal.columns:
            i, j = position[f], position[f"{f}:{moderator}"]
            for value in values:
                result = fit.combination({f: 1.0, f"{f}:{moderator}": value}, level=level)
                rows.append({"focal": f, "moderator_value": value, **result})
            jn[f] = johnson_neyman(params[i], params[j], cov[i, i], cov[j, j], cov[i, j], crit,
                                   moderator, observed)
    effects = pd.DataFrame(rows).rename(columns={"estimate": "effect"})
    return ModerationResult(outcome, moderator, categorical, fit, list(focal.columns), effects,
                            jn, observed, notes)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fit_moderation(data: pd.DataFrame, outcome: str, focal: str, moderator: str,
                   covariates: Sequence[str] = (), se_type: str = "HC2",
                   at: Sequence[object] | None = None, categorical: bool = False,
                   level: float = 0.95) -> ModerationResult:
    """``outcome ~ focal * moderator + covariates`` on complete cases (the CLI's model)."""
    columns = [outcome, focal, moderator, *covariates]
    for column in columns:
        if column not in data:
            raise EstimationError(f"column {column!r} is not in the data")
    numeric = {c: _numeric(data, c) for c in [outcome, focal, *covariates]}
    if categorical:
        w = data[moderator]
        if not (pd.api.types.is_numeric_dtype(w) and not pd.api.types.is_bool_dtype(w)):
            converted = pd.to_numeric(w, errors="coerce")
            w = converted if converted[w.notna()].notna().all() else w.astype("string")
    else:
        w = _numeric(data, moderator)
    frame = pd.DataFrame(numeric)
    frame["__w"] = w
    frame = frame.dropna()
    if len(frame) < 3:
        raise EstimationError(f"too few complete rows ({len(frame)})")
    covariate_frame = frame[list(covariates)] if covariates else None
    return fit_moderated(frame[outcome], frame[[focal]], frame["__w"], moderator, categorical,
                         covariate_frame, se_type, at, outcome, level)


def fit_arm_moderation(frame: pd.DataFrame, outcome: str, moderator: str, arms: Sequence[str],
                       arm_column: str = "arm", control_arm: str = "control",
                       categorical: bool = False, covariates: Sequence[str] = (),
                       se_type: str = "HC2", at: Sequence[object] | None = None,
                       ) -> ModerationResult:
    """Y ~ arm dummies * W: each treatment arm's effect as a function of the moderator."""
    for column in (outcome, moderator):
        if column not in frame:
            raise EstimationError(f"column {column!r} is not in the data")
    keep = frame[arm_column].isin([control_arm, *arms]).fillna(False)
    keep &= frame[outcome].notna() & frame[moderator].notna()
    sample = frame.loc[keep]
    if len(sample) < 10:
        raise EstimationError(f"{outcome} x {moderator}: only {len(sample)} complete rows")
    w = sample[moderator] if categorical else _numeric(sample, moderator)
    if not categorical and w.std(ddof=0) == 0:
        raise EstimationError(f"{outcome} x {moderator}: moderator is constant")
    counts = sample[arm_column].value_counts()
    usable = [a for a in arms if counts.get(a, 0) >= 3]
    notes = [f"{outcome} x {moderator}: arm {a} left out ({int(counts.get(a, 0))} respondents)"
             for a in arms if a not in usable]
    if not usable or counts.get(control_arm, 0) < 3:
        raise EstimationError(f"{outcome} x {moderator}: too few respondents per arm")
    sample = sample[sample[arm_column].isin([control_arm, *usable])]
    w = w.loc[sample.index]
    covariate_frame = None
    if covariates:
        covariate_frame, covariate_notes = prepare_covariates(sample, covariates, center=True)
        notes.extend(f"{outcome} x {moderator}: {n}" for n in covariate_notes)
    result = fit_moderated(sample[outcome].astype(float),
                           arm_dummies(sample[arm_column], usable, arm_column), w, moderator,
                           categorical, covariate_frame, se_type, at, outcome)
    result.notes.extend(notes)
    return result


def focal_arm(term: str) -> str:
    """``arm[T.house]`` -> ``house``."""
    return term.split("[T.", 1)[1].rstrip("]") if "[T." in term else term


__all__ = ["ModerationResult", "arm_term", "fit_arm_moderation", "fit_moderated",
           "fit_moderation", "johnson_neyman", "focal_arm"]
