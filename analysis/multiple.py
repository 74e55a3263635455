"""Multiple-comparison adjustment: Holm (family-wise error) and Benjamini-Hochberg (FDR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def _adjust_finite(p_values: Sequence[float], adjust: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``adjust`` to the finite p-values only; NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = np.minimum(adjust(p[finite]), 1.0)
    return adjusted


def _holm(values: np.ndarray) -> np.ndarray:
    m = len(values)
    order = np.argsort(values)
    result = np.empty(m)
    result[order] = np.maximum.accumulate((m - np.arange(m)) * values[order])
    return result


def _benjamini_hochberg(values: np.ndarray) -> np.ndarray:
    m = len(values)
    order = np.argsort(values)[::-1]  # largest first
    ranks = m - np.arange(m)  # rank of each sorted p-value among m (largest has rank m)
    result = np.empty(m)
    result[order] = np.minimum.accumulate(values[order] * m / ranks)
    return result


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    return _adjust_finite(p_values, _holm)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values)."""
    return _adjust_finite(p_values, _benjamini_hochberg)


def adjust_pvalues(table: pd.DataFrame, p_column: str, by: Sequence[str],
                   suffix: str = "") -> pd.DataFrame:
    """Add ``p_holm`` and ``p_bh`` columns, adjusting within each group of ``by``.

    Grouping by (estimator, contrast/arm, family) adjusts across the outcomes of each outcome
    family: the pre-registered families DV1-DV3 are the units of the multiplicity correction.
    """
    table = table.copy()
    table[f"p_holm{suffix}"] = np.nan
    table[f"p_bh{suffix}"] = np.nan
    if table.empty:
        return table
    for _, group in table.groupby(list(by), sort=False, dropna=False):
        table.loc[group.index, f"p_holm{suffix}"] = holm(group[p_column].to_numpy())
        table.loc[group.index, f"p_bh{suffix}"] = benjamini_hochberg(group[p_column].to_numpy())
    return table
