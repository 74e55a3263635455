"""Mask metrics against values computed by hand on tiny label maps."""

import math

import numpy as np
import pytest

from generator.metrics import edge_coherence, error_rate, f05_score, iou, mask_scores, sobel_edges

# 2 x 4 labels: row 0 cannot, row 1 must, last column may (ignored)
LABELS = np.array([[0, 0, 0, 2], [1, 1, 1, 2]])


def test_soft_prediction_error_and_f05_by_hand():
    pred = np.array([[0.2, 0.0, 0.0, 1.0], [0.5, 1.0, 1.0, 0.0]])
    # FP = 0.2 (cannot pixels), FN = 0.5, TP = 2.5, #must = 3, all pixels = 8
    assert error_rate(pred, LABELS) == pytest.approx((0.2 + 0.5) / 8)
    precision, recall = 2.5 / 2.7, 2.5 / 3
    expected = 1.25 * precision * recall / (0.25 * precision + recall)
    assert f05_score(pred, LABELS) == pytest.approx(expected)
    assert f05_score(pred, LABELS) == pytest.approx(0.9058, abs=1e-4)


def test_perfect_and_empty_predictions():
    perfect = (LABELS == 1).astype(float)
    assert error_rate(perfect, LABELS) == 0.0
    assert f05_score(perfect, LABELS) == pytest.approx(1.0)
    assert iou(perfect, LABELS) == 1.0
    empty = np.zeros_like(perfect)
    assert error_rate(empty, LABELS) == pytest.approx(3 / 8)
    assert f05_score(empty, LABELS) == 0.0
    assert edge_coherence(empty, LABELS) == 1.0
    assert iou(empty, LABELS) == 0.0


def test_iou_ignores_may_pixels_and_thresholds():
    pred = np.array([[0.6, 0.0, 0.0, 1.0], [0.4, 1.0, 1.0, 1.0]])
    # binarised at 0.5: predicted {(0,0), (1,1), (1,2)} (the may column is ignored);
    # intersection 2, union {(0,0),(1,0),(1,1),(1,2)} = 4
    assert iou(pred, LABELS) == pytest.approx(0.5)


def test_edge_coherence_of_shifted_boundary():
    labels = np.zeros((10, 10), int)
    labels[5:] = 1
    assert edge_coherence((labels == 1).astype(float), labels) == pytest.approx(0.0)
    # a prediction whose boundary is tilted: its edge pixels sit at varying distances
    pred = np.zeros((10, 10))
    for col in range(10):
        pred[3 + col // 4:, col] = 1
    edges_true = sobel_edges(labels == 1)
    edges_pred = sobel_edges(pred >= 0.5)
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~edges_true)[edges_pred]
    expected = float(np.std(dist)) / 10
    assert expected > 0
    assert edge_coherence(pred, labels) == pytest.approx(expected)


def test_sobel_edges_of_half_plane_are_the_two_rows_at_the_step():
    binary = np.zeros((6, 4), bool)
    binary[3:] = True
    edges = sobel_edges(binary)
    assert edges[2].all() and edges[3].all()
    assert not edges[[0, 1, 4, 5]].any()


def test_edge_coherence_of_one_row_offset_is_constant_distance():
    labels = np.zeros((8, 8), int)
    labels[4:] = 1
    pred = np.zeros((8, 8))
    pred[5:] = 1  # boundary one row lower
    # Sobel marks rows 3-4 for the labels and rows 4-5 for the prediction: predicted edge
    # distances are 0 (row 4) and 1 (row 5) in equal numbers -> std 0.5, over height 8
    assert edge_coherence(pred, labels) == pytest.approx(0.5 / 8)
    assert not math.isnan(mask_scores(pred, labels).edge_coherence)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        error_rate(np.zeros((2, 2)), np.zeros((2, 3), int))
    with pytest.raises(ValueError):
        error_rate(np.full((2, 2), 1.5), np.zeros((2, 2), int))
    with pytest.raises(ValueError):
        error_rate(np.zeros((2, 2)), np.full((2, 2), 3))
