"""Figures (matplotlib, Agg backend). Estimation lives elsewhere: these take result tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.moderation import ModerationResult, focal_arm


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def coefficient_plot(effects: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Point estimates with 95% intervals, one row per outcome x arm, grouped by outcome."""
    plt = _pyplot()
    rows = effects.reset_index(drop=True)
    height = max(2.5, 0.28 * len(rows) + 1.0)
    figure, axis = plt.subplots(figsize=(7.5, height))
    positions = np.arange(len(rows))[::-1]
    arms = list(dict.fromkeys(rows["arm"]))
    colours = plt.get_cmap("tab10")
    for k, arm in enumerate(arms):
        mask = (rows["arm"] == arm).to_numpy()
        axis.errorbar(rows.loc[mask, "estimate"], positions[mask],
                      xerr=[rows.loc[mask, "estimate"] - rows.loc[mask, "ci_low"],
                            rows.loc[mask, "ci_high"] - rows.loc[mask, "estimate"]],
                      fmt="o", color=colours(k), label=arm, capsize=2)
    axis.axvline(0, color="grey", linewidth=0.8)
    axis.set_yticks(positions)
    axis.set_yticklabels([f"{o} · {a}" for o, a in zip(rows["outcome"], rows["arm"],
                                                         strict=True)], fontsize=7)
    axis.set_xlabel("effect vs control (95% CI)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def _draw_conditional(axis, result: ModerationResult, post_treatment: bool,
                      points: int = 60) -> None:
    """Effect of each arm across the moderator with a 95% band and Johnson-Neyman bounds."""
    plt = _pyplot()
    fit = result.fit
    colours = plt.get_cmap("tab10")
    if result.categorical:
        table = result.conditional_effects
        levels = list(dict.fromkeys(table["moderator_value"]))
        width = 0.8 / max(1, len(result.focal_terms))
        for k, focal in enumerate(result.focal_terms):
            part = table[table["focal"] == focal]
            x = np.arange(len(part)) + k * width
            axis.errorbar(x, part["effect"], yerr=[part["effect"] - part["ci_low"],
                                                   part["ci_high"] - part["effect"]],
                          fmt="o", capsize=2, color=colours(k), label=focal_arm(focal))
        axis.set_xticks(np.arange(len(levels)) + 0.4 - width / 2)
        axis.set_xticklabels([str(v) for v in levels])
    else:
        low, high = result.moderator_range or (0.0, 1.0)
        grid = np.linspace(low, high, points)
        crit = stats.t.ppf(0.975, fit.df_resid)
        for k, focal in enumerate(result.focal_terms):
            interaction = f"{focal}:{result.moderator}"
            # b1 + w b3 at each point of the grid, with its standard error (statsmodels' t_test)
            effect, se = fit.estimates([{focal: 1.0, interaction: float(w)} for w in grid])
            axis.plot(grid, effect, color=colours(k), label=focal_arm(focal))
            axis.fill_between(grid, effect - crit * se, effect + crit * se, color=colours(k),
                              alpha=0.15)
            for bound in result.johnson_neyman[focal]["bounds"]:
                if low <= bound <= high:
                    axis.axvline(bound, color=colours(k), linestyle=":", linewidth=0.9)
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel(result.moderator + ("  [POST-TREATMENT]" if post_treatment else ""))
    axis.set_ylabel(f"effect on {result.outcome} (95% band)")
    axis.set_title(f"Conditional effects by {result.moderator}"
                   + (" (post-treatment moderator)" if post_treatment else ""), fontsize=9)
    axis.legend(fontsize=7)


def _draw_interaction(axis, result: ModerationResult, post_treatment: bool) -> None:
    """Predicted outcome against a continuous moderator, one line per arm (covariates at mean)."""
    plt = _pyplot()
    params = result.fit.params
    low, high = result.moderator_range or (0.0, 1.0)
    grid = np.linspace(low, high, 50)
    base = params["Intercept"] + params[result.moderator] * grid
    axis.plot(grid, base, color="black", label="control")
    colours = plt.get_cmap("tab10")
    for k, focal in enumerate(result.focal_terms):
        line = base + params[focal] + params[f"{focal}:{result.moderator}"] * grid
        axis.plot(grid, line, color=colours(k), label=focal_arm(focal))
    axis.set_xlabel(result.moderator + ("  [POST-TREATMENT]" if post_treatment else ""))
    axis.set_ylabel(f"predicted {result.outcome}")
    axis.set_title(f"Interaction plot: {result.outcome} by arm", fontsize=9)
    axis.legend(fontsize=7)


def moderation_figure(result: ModerationResult, path: str | Path,
                      post_treatment: bool = False) -> Path:
    """Conditional effects with bands and, for a continuous moderator, the interaction plot."""
    plt = _pyplot()
    panels = 1 if result.categorical else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    _draw_conditional(axes[0, 0], result, post_treatment)
    if panels == 2:
        _draw_interaction(axes[0, 1], result, post_treatment)
    figure.suptitle(f"{result.outcome} x {result.moderator}"
                    + ("  [POST-TREATMENT MODERATOR]" if post_treatment else ""), fontsize=10)
    # Fixed margins: tight_layout would render the figure twice, doubling the cost per plot.
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.86, wspace=0.28)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)
