"""Smog and wildfire formulas checked on tiny inputs with hand-computed values."""

import math

import numpy as np
import pytest
import torch

from generator.effects import (
    fire_sky_weight,
    linear_to_srgb,
    smog,
    smog_distance_map,
    srgb_to_linear,
    wildfire,
    wildfire_colour_grade,
)


def test_srgb_round_trip_and_known_values():
    assert srgb_to_linear(np.array(0.5)) == pytest.approx(0.21404, abs=1e-5)
    assert linear_to_srgb(np.array(0.21404)) == pytest.approx(0.5, abs=1e-4)
    x = np.linspace(0, 1, 11)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-9)


def test_distance_map_normalize_invert_renormalize():
    # inverse depth 0 (far), 0.5, 1 (near) -> [0.3, 0.65, 1] -> 1/x = [3.333, 1.538, 1]
    # -> renormalised to [0.1, 1]: far 1, near 0.1, middle 0.1 + 0.9 * (1.538 - 1) / 2.333
    d = smog_distance_map(np.array([[0.0, 0.5, 1.0]]))
    middle = 0.1 + 0.9 * (1 / 0.65 - 1) / (1 / 0.3 - 1)
    np.testing.assert_allclose(d, [[1.0, middle, 0.1]], atol=1e-12)


def test_smog_pixel_by_hand():
    image = np.full((1, 2, 3), 0.5)
    depth = np.array([[0.0, 1.0]])  # far, near
    out = smog(image, depth)
    lin = srgb_to_linear(np.array(0.5))
    tint = np.array([224, 192, 29]) / 255
    for col, dist in ((0, 1.0), (1, 0.1)):
        t = math.exp(-2 * dist)
        srgb = linear_to_srgb(np.array(t * lin + (1 - t) * 0.76))
        expected = (1 - 20 / 255) * srgb + 20 / 255 * tint
        np.testing.assert_allclose(out[0, col], expected, atol=1e-12)
    # far pixels are hazier (closer to the bright airlight) than near ones
    assert out[0, 0].mean() > out[0, 1].mean()


def test_smog_keeps_kind_uint8_and_torch_batch():
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    depth = rng.random((4, 5))
    out8 = smog(img8, depth)
    assert out8.dtype == np.uint8 and out8.shape == img8.shape
    ref = smog(img8 / 255.0, depth)
    assert np.abs(out8 / 255.0 - ref).max() <= 0.5 / 255 + 1e-9
    batch = torch.from_numpy(img8 / 255.0).permute(2, 0, 1)[None].repeat(2, 1, 1, 1).float()
    out_t = smog(batch, torch.from_numpy(np.stack([depth, depth]))[:, None])
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(out_t[1].permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_wildfire_colour_grade_by_hand():
    pixel = np.array([[[100, 100, 100]]]) / 255.0
    # R: 140 -> (140/255 - .5) * 1.5 + .5 = 0.57353 -> * .95 = 0.54485
    r = ((140 / 255 - 0.5) * 1.5 + 0.5) * 0.95
    g = ((90 / 255 - 0.5) * 1.5 + 0.5) * 0.95
    b = ((80 / 255 - 0.5) * 1.5 + 0.5) * 0.95
    np.testing.assert_allclose(wildfire_colour_grade(pixel)[0, 0], [r, g, b], atol=1e-12)
    assert r == pytest.approx(0.54485, abs=1e-5)


def test_fire_sky_weight_ignores_lowest_third_and_spreads():
    seg = np.zeros((30, 30), int)
    seg[:5] = 9  # sky at the top
    seg[25:] = 9  # "sky" in the lowest third (e.g. a reflection): ignored
    w = fire_sky_weight(seg)
    assert w.shape == seg.shape and w.min() >= 0 and w.max() <= 1
    assert w[0].mean() > w[-1].mean()
    only_top = seg.copy()
    only_top[25:] = 0
    np.testing.assert_allclose(w, fire_sky_weight(only_top))
    assert np.all(fire_sky_weight(np.zeros((30, 30), int)) == 0)


def test_wildfire_blend_no_sky_is_pure_grade_and_full_sky_is_towards_fire():
    img = np.full((12, 12, 3), 0.4)
    no_sky = wildfire(img, np.zeros((12, 12), int), fire_green=120)
    np.testing.assert_allclose(no_sky, wildfire_colour_grade(img))
    all_sky = wildfire(img, np.full((12, 12), 9), fire_green=120)
    # the top rows are far inside the dilated sky -> weight close to 1 after blurring
    weight = fire_sky_weight(np.full((12, 12), 9))
    alpha = 200 / 255 * weight[0, 0]
    expected = (1 - alpha) * wildfire_colour_grade(img)[0, 0] + alpha * np.array([1, 120 / 255, 0])
    np.testing.assert_allclose(all_sky[0, 0], expected, atol=1e-12)
    assert all_sky[0, 0, 0] > all_sky[0, 0, 2]
