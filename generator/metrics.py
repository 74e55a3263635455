"""Mask metrics as used in ClimateGAN's evaluation (spec: "Mask metrics").

Labels per pixel: 0 cannot-be-water, 1 must-be-water, 2 may-be-water (ignored). The prediction
``p`` may be soft (probabilities in [0, 1]) or binary. With FP = sum of p over "cannot",
FN = sum of (1 - p) over "must", TP = sum of p over "must":

- error = (FP + FN) / all pixels (the ignored pixels count in the denominator, as published);
- F0.5 = 1.25 P R / (0.25 P + R) with P = TP / (TP + FP), R = TP / #must;
- edge coherence = std over the Sobel edge pixels of the binarised prediction of the distance to
  the nearest edge of the "must" region, divided by the image height (1 when the prediction is
  empty; also 1 when the labels have no "must" edge to compare with);
- IoU of the binarised prediction with the "must" region over the non-ignored pixels.

All functions take numpy arrays (or torch tensors, converted) of shape ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

CANNOT, MUST, MAY = 0, 1, 2


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _check(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    p = _np(pred).astype(np.float64)
    lab = _np(labels).astype(np.int64)
    if p.shape != lab.shape or p.ndim != 2:
        raise ValueError(f"prediction {p.shape} and labels {lab.shape} must be equal 2-D shapes")
    if p.min(initial=0.0) < 0 or p.max(initial=0.0) > 1:
        raise ValueError("prediction must lie in [0, 1]")
    if not np.isin(lab, (CANNOT, MUST, MAY)).all():
        raise ValueError("labels must be 0 (cannot), 1 (must) or 2 (may)")
    return p, lab


def _counts(p: np.ndarray, lab: np.ndarray) -> tuple[float, float, float, float]:
    must = lab == MUST
    fp = float(p[lab == CANNOT].sum())
    fn = float((1 - p[must]).sum())
    tp = float(p[must].sum())
    return tp, fp, fn, float(must.sum())


def error_rate(pred, labels) -> float:
    """(FP + FN) / number of pixels."""
    p, lab = _check(pred, labels)
    _, fp, fn, _ = _counts(p, lab)
    return (fp + fn) / lab.size


def f05_score(pred, labels) -> float:
    """F0.5 = 1.25 P R / (0.25 P + R); 0 when nothing is predicted or nothing must be water."""
    p, lab = _check(pred, labels)
    tp, fp, _, n_must = _counts(p, lab)
    if tp + fp <= 0 or n_must <= 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / n_must
    if precision + recall <= 0:
        return 0.0
    return 1.25 * precision * recall / (0.25 * precision + recall)


def sobel_edges(binary: np.ndarray) -> np.ndarray:
    """Boolean edge map of a binary image: non-zero Sobel gradient magnitude."""
    b = binary.astype(np.float64)
    gx = ndimage.sobel(b, axis=1, mode="nearest")
    gy = ndimage.sobel(b, axis=0, mode="nearest")
    return np.hypot(gx, gy) > 0


def edge_coherence(pred, labels, threshold: float = 0.5) -> float:
    """Std of the distance from predicted edges to the nearest "must" edge, over image height."""
    p, lab = _check(pred, labels)
    binary = p >= threshold
    if not binary.any():
        return 1.0
    pred_edges = sobel_edges(binary)
    must_edges = sobel_edges(lab == MUST)
    if not pred_edges.any():
        return 0.0  # a prediction covering the whole image has no edge to be off
    if not must_edges.any():
        return 1.0
    distance = ndimage.distance_transform_edt(~must_edges)
    return float(np.std(distance[pred_edges]) / lab.shape[0])


def iou(pred, labels, threshold: float = 0.5) -> float:
    """IoU of ``pred >= threshold`` with the "must" region, ignoring "may" pixels (1 if both empty)."""
    p, lab = _check(pred, labels)
    keep = lab != MAY
    binary = (p >= threshold) & keep
    must = lab == MUST
    union = float((binary | must).sum())
    if union == 0:
        return 1.0
    return float((binary & must).sum()) / union


@dataclass
class MaskScores:
    iou: float
    error: float
    f05: float
    edge_coherence: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mask_scores(pred, labels, threshold: float = 0.5) -> MaskScores:
    """All four metrics for one image."""
    return MaskScores(
        iou=iou(pred, labels, threshold),
        error=error_rate(pred, labels),
        f05=f05_score(pred, labels),
        edge_coherence=edge_coherence(pred, labels, threshold),
    )


def mean_scores(scores: list[MaskScores]) -> MaskScores:
    """Per-image average of each metric (as ClimateGAN reports them)."""
    if not scores:
        raise ValueError("no scores to average")
    return MaskScores(**{k: float(np.mean([getattr(s, k) for s in scores]))
                         for k in ("iou", "error", "f05", "edge_coherence")})
