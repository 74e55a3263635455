"""Simulation-based power for the planned contrasts at a planned total sample size.

With only arm dummies in the model, the HC2 variance of a contrast of arm means equals the
Neyman variance sum(w_g^2 s_g^2 / n_g); the simulation computes it directly in numpy for speed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from analysis.variables import ContrastSpec, StudyVariables, default_variables


def _all_contrasts(variables: StudyVariables) -> list[ContrastSpec]:
    versus_control = [
        ContrastSpec(f"{arm} - control", "vs control",
                     ((arm, 1.0), (variables.control_arm, -1.0)), alternative="greater")
        for arm in variables.treatment_arms
    ]
    return versus_control + list(variables.contrasts)


def simulate_power(n_total: int, effects: Mapping[str, float], reps: int = 1000,
                   alpha: float = 0.05, seed: int = 1, sd: float = 1.0,
                   allocation: Mapping[str, float] | None = None,
                   variables: StudyVariables | None = None) -> pd.DataFrame:
    """Share of simulated studies rejecting each directional contrast (one-sided, level alpha).

    ``effects``: true mean difference of each treatment arm versus control (outcome SD units).
    """
    variables = variables or default_variables()
    arms = list(variables.arms)
    shares = np.array([(allocation or {}).get(arm, 1.0) for arm in arms], dtype=float)
    sizes = np.floor(n_total * shares / shares.sum()).astype(int)
    if (sizes < 2).any():
        raise ValueError("planned N gives fewer than two respondents in an arm")
    means = np.array([effects.get(arm, 0.0) for arm in arms])
    rng = np.random.default_rng(seed)
    # Sufficient statistics of normal samples: mean ~ N(mu, sd^2/n), variance ~ sd^2 chi2/(n-1).
    sample_means = means + rng.normal(size=(reps, len(arms))) * sd / np.sqrt(sizes)
    sample_vars = sd**2 * rng.chisquare(sizes - 1, size=(reps, len(arms))) / (sizes - 1)
    df_resid = sizes.sum() - len(arms)
    rows = []
    for contrast in _all_contrasts(variables):
        weights = np.zeros(len(arms))
        for arm, weight in contrast.weights:
            weights[arms.index(arm)] += weight
        estimate = sample_means @ weights
        se = np.sqrt(sample_vars @ (weights**2 / sizes))
        t_values = estimate / se
        if contrast.alternative == "two-sided":
            reject = 2 * stats.t.sf(np.abs(t_values), df_resid) < alpha
        elif contrast.alternative == "less":
            reject = stats.t.cdf(t_values, df_resid) < alpha
        else:
            reject = stats.t.sf(t_values, df_resid) < alpha
        power = float(reject.mean())
        rows.append({
            "contrast": contrast.name, "hypothesis": contrast.hypothesis,
            "true_effect": float(means @ weights), "n_total": int(sizes.sum()),
            "alpha": alpha, "reps": reps, "power": power,
            "mc_se": float(np.sqrt(power * (1 - power) / reps)),
        })
    return pd.DataFrame(rows)
