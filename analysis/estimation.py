"""Least squares with heteroskedasticity-robust standard errors, and tests of linear combinations.

All regression fits of the package go through :func:`fit_ols` (and :func:`fit_logit`), which call
statsmodels. The benchmark measures the time spent inside those calls with :func:`record_fits`.
Inference uses the t distribution with the residual degrees of freedom for every covariance type
(as estimatr does for HC2), so small samples are not over-confident.
"""

from __future__ import annotations

import contextvars
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

SE_TYPES = ("classical", "HC0", "HC1", "HC2", "HC3")
_STATSMODELS_COV = {"classical": "nonrobust", "HC0": "HC0", "HC1": "HC1", "HC2": "HC2",
                    "HC3": "HC3"}


class EstimationError(ValueError):
    """The model cannot be estimated on these data (too few rows, no variation, ...)."""


@dataclass
class FitTimings:
    """Accumulates the wall time spent inside the statsmodels calls."""

    seconds: float = 0.0
    count: int = 0
    by_kind: dict[str, float] = field(default_factory=dict)

    def add(self, kind: str, seconds: float) -> None:
        self.seconds += seconds
        self.count += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0.0) + seconds


# Context-local (not process-global) so concurrent runs never mix their timings.
_active_timings: contextvars.ContextVar[FitTimings | None] = contextvars.ContextVar(
    "analysis_fit_timings", default=None
)


@contextmanager
def record_fits() -> Iterator[FitTimings]:
    """Within this block, every statsmodels fit adds its wall time to the yielded object."""
    timings = FitTimings()
    token = _active_timings.set(timings)
    try:
        yield timings
    finally:
        _active_timings.reset(token)


@contextmanager
def _timed(kind: str) -> Iterator[None]:
    timings = _active_timings.get()
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings.add(kind, time.perf_counter() - start)


@dataclass(frozen=True)
class LinearFit:
    """What the rest of the package needs from a fitted linear model.

    ``params`` and ``cov`` are labelled copies for reading single coefficients; tests of linear
    combinations go through statsmodels' own ``t_test``/``wald_test`` on ``result``.
    """

    params: pd.Series
    cov: pd.DataFrame
    df_resid: float
    nobs: int
    r2: float
    se_type: str
    max_leverage: float = float("nan")
    result: Any = field(default=None, repr=False, compare=False)  # statsmodels' results object

    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.clip(np.diag(self.cov.to_numpy()), 0, None)),
                         index=self.params.index)

    def coefficient_table(self, level: float = 0.95) -> pd.DataFrame:
        se = self.se()
        t_values = self.params / se
        p_values = 2 * stats.t.sf(np.abs(t_values), self.df_resid)
        crit = stats.t.ppf(0.5 + level / 2, self.df_resid)
        return pd.DataFrame({
            "estimate": self.params, "se": se, "t": t_values, "p": p_values,
            "ci_low": self.params - crit * se, "ci_high": self.params + crit * se,
        })

    def contrast_matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """One row of weights per combination, in the order of ``params`` (unknown term: KeyError)."""
        matrix = np.zeros((len(rows), len(self.params)))
        position = {term: i for i, term in enumerate(self.params.index)}
        for r, weights in enumerate(rows):
            for term, weight in weights.items():
                matrix[r, position[term]] = weight
        return matrix

    def estimates(self, rows: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Estimates and standard errors of several combinations (statsmodels' ``t_test``).

        NaN standard errors when the covariance is undefined (a leverage of one under HC2/HC3).
        """
        matrix = self.contrast_matrix(rows)
        if not np.isfinite(self.cov.to_numpy()).all():
            return matrix @ self.params.to_numpy(), np.full(len(rows), np.nan)
        test = self.result.t_test(matrix)
        return np.atleast_1d(test.effect).astype(float), np.atleast_1d(test.sd).astype(float).ravel()

    def combination(self, weights: Mapping[str, float], alternative: str = "two-sided",
                    level: float = 0.95) -> dict[str, float]:
        """Estimate, SE, t, p and CI of sum(w_j * b_j); one-sided p for a directional test."""
        if alternative not in ("greater", "less", "two-sided"):
            raise ValueError(f"alternative must be greater, less or two-sided, not {alternative!r}")
        (estimate,), (se,) = self.estimates([weights])
        estimate, se = float(estimate), float(se)
        t_value = estimate / se if se > 0 else float("nan")
        if alternative == "greater":
            p_value = float(stats.t.sf(t_value, self.df_resid))
        elif alternative == "less":
            p_value = float(stats.t.cdf(t_value, self.df_resid))
        else:
            p_value = float(2 * stats.t.sf(abs(t_value), self.df_resid))
        crit = stats.t.ppf(0.5 + level / 2, self.df_resid)
        return {"estimate": estimate, "se": se, "t": t_value, "p": p_value,
                "ci_low": estimate - crit * se, "ci_high": estimate + crit * se}


def check_se_type(se_type: str) -> str:
    if se_type not in SE_TYPES:
        raise ValueError(f"se must be one of {', '.join(SE_TYPES)}, not {se_type!r}")
    return se_type


def fit_ols(y: pd.Series | np.ndarray, design: pd.DataFrame, se_type: str = "HC2",
            weights: pd.Series | np.ndarray | None = None) -> LinearFit:
    """OLS of y on the design's columns (include an Intercept column yourself); with
    ``weights``, weighted least squares (survey weights: the robust sandwich, HC2 by default,
    is the one to use with them)."""
    import statsmodels.api as sm  # imported lazily: keeps `import analysis` light

    check_se_type(se_type)
    y_values = np.asarray(y, dtype=float)
    x_values = design.to_numpy(dtype=float)
    n, k = x_values.shape
    if n - k < 1:
        raise EstimationError(f"too few observations ({n}) for {k} parameters")
    with _timed("ols"), warnings.catch_warnings():
        # HC2/HC3 divide by (1 - leverage); a leverage of one gives inf, reported as NaN below.
        warnings.simplefilter("ignore", RuntimeWarning)
        # Rank deficiency is checked below and reported as an EstimationError instead.
        warnings.simplefilter("ignore", UserWarning)
        model = (sm.OLS(y_values, x_values) if weights is None
                 else sm.WLS(y_values, x_values, weights=np.asarray(weights, dtype=float)))
        result = model.fit(cov_type=_STATSMODELS_COV[se_type], use_t=True)
        if model.rank < k:  # statsmodels' rank comes from the SVD it already computed
            raise EstimationError("design matrix is rank-deficient (a constant or collinear "
                                  "column)")
        cov = np.asarray(result.cov_params())
        leverage = None
        if se_type in ("HC2", "HC3"):
            leverage = np.einsum("ij,ji->i", model.wexog, model.pinv_wexog)
    cov = np.where(np.isfinite(cov), cov, np.nan)
    max_leverage = float(leverage.max()) if leverage is not None else float("nan")
    if leverage is not None and max_leverage > 1 - 1e-8:
        # A single observation determines a coefficient: its HC2/HC3 variance is undefined.
        cov = np.full_like(cov, np.nan)
    names = list(design.columns)
    total_ss = float(np.sum((y_values - y_values.mean()) ** 2))
    r2 = float(1 - result.ssr / total_ss) if total_ss > 0 else float("nan")
    return LinearFit(
        params=pd.Series(np.asarray(result.params), index=names),
        cov=pd.DataFrame(cov, index=names, columns=names),
        df_resid=float(result.df_resid), nobs=n, r2=r2, se_type=se_type,
        max_leverage=max_leverage, result=result,
    )


def wald_test(fit: LinearFit, terms: list[str]) -> dict[str, float]:
    """Joint test that the named coefficients are all zero, as an F statistic (statsmodels'
    ``wald_test`` with the fit's robust covariance)."""
    if not terms:
        return {"F": float("nan"), "df_num": 0, "df_den": fit.df_resid, "p": float("nan")}
    if not np.isfinite(fit.cov.to_numpy()).all():  # undefined covariance: see fit_ols
        return {"F": float("nan"), "df_num": len(terms), "df_den": fit.df_resid,
                "p": float("nan")}
    test = fit.result.wald_test(fit.contrast_matrix([{term: 1.0} for term in terms]), use_f=True,
                                scalar=True)
    return {"F": float(test.statistic), "df_num": len(terms), "df_den": fit.df_resid,
            "p": float(test.pvalue)}


def fit_logit_ame(y: pd.Series | np.ndarray, design: pd.DataFrame, terms: list[str],
                  level: float = 0.95) -> pd.DataFrame:
    """Logit of a 0/1 outcome; average marginal effects of the factor coded by ``terms``.

    ``terms`` are mutually exclusive 0/1 columns (arm dummies, reference = all zero). The AME of
    one level is the mean over respondents of P(y | that level) - P(y | reference), every other
    column kept at the respondent's value; its SE comes from the delta method with the MLE
    covariance. (statsmodels' per-dummy discrete change would switch one dummy on while another
    stays on, an impossible arm combination.)
    """
    import statsmodels.api as sm

    y_values = np.asarray(y, dtype=float)
    x_values = design.to_numpy(dtype=float)
    if len(np.unique(y_values)) < 2:
        raise EstimationError("outcome has no variation")
    if y_values.shape[0] - x_values.shape[1] < 1:
        raise EstimationError("too few observations for the logit")
    with _timed("logit"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = sm.Logit(y_values, x_values).fit(disp=0, maxiter=100)
        except Exception as error:  # perfect separation, singular Hessian, ...
            raise EstimationError(f"logit failed: {error}") from error
    if not result.mle_retvals.get("converged", True):
        raise EstimationError("logit did not converge (separation?)")
    params = np.asarray(result.params)
    cov = np.asarray(result.cov_params())
    if not np.isfinite(cov).all() or np.abs(params).max() > 15:
        raise EstimationError("logit estimates diverge (separation: an arm with all 0 or all 1)")
    columns = list(design.columns)
    positions = [columns.index(t) for t in terms]
    reference = x_values.copy()
    reference[:, positions] = 0.0
    p_reference = 1 / (1 + np.exp(-reference @ params))
    crit = stats.norm.ppf(0.5 + level / 2)
    rows = {}
    for term, position in zip(terms, positions, strict=True):
        level_x = reference.copy()
        level_x[:, position] = 1.0
        p_level = 1 / (1 + np.exp(-level_x @ params))
        ame = float(np.mean(p_level - p_reference))
        gradient = ((p_level * (1 - p_level))[:, None] * level_x
                    - (p_reference * (1 - p_reference))[:, None] * reference).mean(axis=0)
        se = float(np.sqrt(gradient @ cov @ gradient))
        z = ame / se if se > 0 else float("nan")
        rows[term] = {"ame": ame, "se": se, "z": z, "p": float(2 * stats.norm.sf(abs(z))),
                      "ci_low": ame - crit * se, "ci_high": ame + crit * se}
    return pd.DataFrame.from_dict(rows, orient="index")
