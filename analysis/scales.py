"""Scale construction: reverse coding, mean indices and Cronbach's alpha."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.variables import ScaleSpec


def reverse_code(values: pd.Series, scale_min: float, scale_max: float) -> pd.Series:
    """Map x to (min + max - x), so 1..5 becomes 5..1; missing stays missing."""
    return (scale_min + scale_max) - values


def scale_items(frame: pd.DataFrame, spec: ScaleSpec) -> pd.DataFrame:
    """The scale's items, reverse-coded where the spec says so (only the items present)."""
    present = [item for item in spec.items if item in frame]
    items = frame[present].apply(pd.to_numeric, errors="coerce").astype(float)
    for item in spec.reverse:
        if item in items:
            items[item] = reverse_code(items[item], spec.scale_min, spec.scale_max)
    return items


def build_index(frame: pd.DataFrame, spec: ScaleSpec) -> pd.Series:
    """Row mean of the answered items; missing when fewer than the required share is answered."""
    items = scale_items(frame, spec)
    if items.shape[1] == 0:
        return pd.Series(np.nan, index=frame.index, name=spec.name)
    answered = items.notna().sum(axis=1)
    needed = max(1, int(np.ceil(spec.min_share_answered * len(spec.items))))
    index = items.mean(axis=1).where(answered >= needed)
    return index.rename(spec.name)


def build_scales(frame: pd.DataFrame, specs: Iterable[ScaleSpec]) -> pd.DataFrame:
    """Add each scale whose items are in the data (an existing column of that name is kept)."""
    frame = frame.copy()
    for spec in specs:
        if spec.name in frame or not any(item in frame for item in spec.items):
            continue
        frame[spec.name] = build_index(frame, spec)
    return frame


def cronbach_alpha(items: pd.DataFrame) -> float:
    """Cronbach's alpha on complete cases: k/(k-1) * (1 - sum(item variances)/var(total))."""
    complete = items.dropna()
    k = complete.shape[1]
    if k < 2 or len(complete) < 2:
        return float("nan")
    total_variance = complete.sum(axis=1).var(ddof=1)
    if not np.isfinite(total_variance) or total_variance <= 0:
        return float("nan")
    item_variances = complete.var(axis=0, ddof=1).sum()
    return float(k / (k - 1) * (1 - item_variances / total_variance))


def reliability_table(frame: pd.DataFrame, specs: Sequence[ScaleSpec],
                      post_treatment: Iterable[str] = ()) -> pd.DataFrame:
    """One row per scale: items, n complete, alpha, mean inter-item correlation, mean, sd."""
    post = set(post_treatment)
    rows = []
    for spec in specs:
        items = scale_items(frame, spec)
        missing_items = [item for item in spec.items if item not in frame]
        complete = items.dropna()
        if items.shape[1] >= 2 and len(complete) >= 3:
            corr = complete.corr().to_numpy()
            off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
            mean_r = float(np.nanmean(off_diagonal)) if np.isfinite(off_diagonal).any() else np.nan
        else:
            mean_r = np.nan
        score = frame[spec.name] if spec.name in frame else build_index(frame, spec)
        rows.append({
            "scale": spec.name,
            "items": " + ".join(spec.items),
            "reversed": " ".join(spec.reverse),
            "missing_items": " ".join(missing_items),
            "post_treatment": any(item in post for item in spec.items) or spec.name in post,
            "n_complete": len(complete),
            "alpha": cronbach_alpha(items),
            "mean_inter_item_r": mean_r,
            "mean": float(score.mean()) if score.notna().any() else np.nan,
            "sd": float(score.std()) if score.notna().sum() > 1 else np.nan,
        })
    return pd.DataFrame(rows)
