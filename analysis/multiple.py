"""Multiple-comparison adjustment: Holm (family-wise error) and Benjamini-Hochberg (FDR), by statsmodels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests


def _adjust_finite(p_values: Sequence[float], method: str) -> np.ndarray:
    """statsmodels' ``multipletests(method=...)`` on the finite p-values only; NaN stays NaN and is
    not counted in the number of tests."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method=method)[1]
    return adjusted


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    return _adjust_finite(p_values, "holm")


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values)."""
    return _adjust_finite(p_values, "fdr_bh")


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
