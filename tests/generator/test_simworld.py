"""The simulated world: determinism, exact masks, classes, speed, domains, data helpers."""


import numpy as np
import pytest
import torch

from generator import simworld
from generator.data import (
    FloodedFolderDataset,
    LabelledMaskFolderDataset,
    SimWorldDataset,
    compute_framing,
    from_model_range,
    prepare_image,
    restore_size,
    to_model_range,
    write_sim_folder,
)
from generator.simworld import GROUND_CLASSES, SKY, render_scene


@pytest.fixture(scope="module")
def sample():
    return render_scene(3, size=(48, 64), water_heights=(0.1, 0.5, 1.2))


def test_shapes_and_types(sample):
    assert sample.image.shape == (48, 64, 3) and sample.image.dtype == np.uint8
    assert sample.depth.shape == (48, 64) and sample.depth.dtype == np.float32
    assert sample.segmentation.shape == (48, 64)
    assert sample.masks.shape == (3, 48, 64) and sample.masks.dtype == bool
    assert sample.flooded.shape == (3, 48, 64, 3)
    assert set(np.unique(sample.segmentation)) <= set(range(simworld.NUM_CLASSES))
    assert simworld.CLASS_NAMES[SKY] == "sky" and SKY == 9


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = render_scene(11, 32)
    b = render_scene(11, 32)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.flooded, b.flooded)
    assert not np.array_equal(a.image, render_scene(12, 32).image)


def test_masks_grow_with_the_water_and_never_cover_sky(sample):
    low, mid, high = sample.masks
    assert (low <= mid).all() and (mid <= high).all()
    assert high.sum() > low.sum() > 0
    assert not (sample.masks & (sample.segmentation == SKY)).any()


def test_mask_is_exact_geometry_test():
    """A pixel is water iff the first surface its ray hits lies below the water plane."""
    s = render_scene(5, 40, water_heights=(0.3,))
    # road pixels lie at y = 0: always under 0.3 m of water; sky never is
    road = s.segmentation == simworld.ROAD
    assert road.any() and s.masks[0][road].all()
    # rendering a level below every surface (road at 0) gives an empty mask
    assert not render_scene(5, 40, water_heights=(-0.01,)).masks.any()


def test_ground_is_flooded_first_and_flooded_render_only_changes_water(sample):
    ground = np.isin(sample.segmentation, GROUND_CLASSES)
    assert sample.masks[2][ground].mean() > 0.95
    for k in range(3):
        dry = ~sample.masks[k]
        np.testing.assert_array_equal(sample.flooded[k][dry], sample.image[dry])
        assert np.abs(sample.flooded[k][sample.masks[k]].astype(int)
                      - sample.image[sample.masks[k]]).mean() > 5


def test_depth_is_positive_and_sky_is_far(sample):
    assert sample.depth.min() > 0
    assert np.allclose(sample.depth[sample.segmentation == SKY], simworld.FAR_DEPTH)
    inv = sample.inverse_depth
    assert inv.max() == pytest.approx(1.0) and inv.min() > 0


def test_domains_differ_in_look():
    sim = np.stack([render_scene(s, 32, "sim", ()).image for s in range(4)]).astype(float)
    real = np.stack([render_scene(s, 32, "real", ()).image for s in range(4)]).astype(float)
    # the real domain is less saturated: mean channel spread is smaller
    def saturation(x):
        return (x.max(axis=-1) - x.min(axis=-1)).mean()
    assert saturation(real) < saturation(sim)
    with pytest.raises(ValueError):
        render_scene(0, 16, "cartoon")


def test_demo_photos_with_label(tmp_path):
    from PIL import Image

    plain = simworld.write_demo_photos(tmp_path / "a", 2, size=(60, 80), label=False)
    labelled = simworld.write_demo_photos(tmp_path / "b", 2, size=(60, 80), label=True)
    assert [p.name for p in labelled] == ["demo_0000.png", "demo_0001.png"]
    a, b = np.asarray(Image.open(plain[0])), np.asarray(Image.open(labelled[0]))
    assert a.shape == b.shape == (60, 80, 3)
    diff = np.argwhere((a != b).any(axis=-1))
    assert len(diff) > 0 and diff[:, 0].max() < 30 and diff[:, 1].max() < 50  # badge top-left


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (40, 40)])
def test_prepare_and_restore_round_trip(mode, shape):
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 256, (shape[0] // 10, shape[1] // 10, 3)),
                    np.ones((10, 10, 1))).astype(np.uint8)
    square, framing = prepare_image(image, 20, mode)
    assert square.shape == (20, 20, 3) and square.dtype == np.uint8
    restored = restore_size(square, framing, background=image if mode == "crop" else None)
    assert restored.shape == image.shape
    assert np.abs(restored.astype(int) - image).mean() < 25
    # label maps keep their values with nearest resizing
    labels = (image[..., 0] > 127).astype(np.uint8)
    lab_sq, _ = prepare_image(labels, 20, mode, nearest=True)
    assert set(np.unique(lab_sq)) <= {0, 1}


def test_crop_framing_and_restore_keeps_outside_pixels():
    framing = compute_framing(100, 200, 50, "crop")
    assert (framing.resized_height, framing.resized_width, framing.top, framing.left) == (
        50, 100, 0, 25)
    image = np.full((100, 200, 3), 7, np.uint8)
    restored = restore_size(np.full((50, 50, 3), 200, np.uint8), framing, background=image)
    assert (restored[:, :50] == 7).all() and (restored[:, 150:] == 7).all()
    assert (restored[:, 50:150] == 200).all()
    tensor_square, _ = prepare_image(torch.rand(3, 100, 200), 50)
    assert tensor_square.shape == (3, 50, 50)


def test_model_range_round_trip():
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    t = to_model_range(image)
    assert t.shape == (3, 4, 4) and t.min() >= -1 and t.max() <= 1
    np.testing.assert_array_equal(from_model_range(t), image)


def test_sim_dataset_items():
    ds = SimWorldDataset(size=32, length=3, water_height=(0.2, 0.8))
    item = ds[1]
    assert item["image"].shape == (3, 32, 32) and item["flooded"].shape == (3, 32, 32)
    assert item["mask"].shape == (1, 32, 32) and item["depth"].shape == (1, 32, 32)
    assert item["segmentation"].dtype == torch.int64
    assert 0.2 <= float(item["water_height"]) <= 0.8
    again = SimWorldDataset(size=32, length=3, water_height=(0.2, 0.8), cache=False)[1]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["mask"], again["mask"])


def test_folder_datasets(tmp_path):
    write_sim_folder(tmp_path / "eval", 2, size=24)
    labelled = LabelledMaskFolderDataset(tmp_path / "eval", size=16)
    assert len(labelled) == 2
    item = labelled[0]
    assert item["image"].shape == (3, 16, 16)
    assert set(item["labels"].unique().tolist()) <= {0, 1}
    write_sim_folder(tmp_path / "wet", 1, size=24, flooded=True)
    wet = FloodedFolderDataset(tmp_path / "wet", size=16)[0]
    assert wet["mask"].shape == (1, 16, 16) and wet["mask"].sum() > 0
