"""The inference pipeline and the reference backend, on real image files, on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from generator import effects
from generator.config import ClimateGANMaskerConfig, tiny_masker_config, tiny_painter_config
from generator.models import build_masker, build_painter
from generator.models.common import fold_spectral_norm
from generator.pipeline import (
    FloodPipeline,
    PipelineOptions,
    fold_batchnorm,
    output_tensors,
    wildfire_blend,
)
from generator.reference import (
    LEARNED_BACKEND,
    NONLEARNED_BACKEND,
    REFERENCE_SIZE,
    RendererParams,
    nonlearned_pipeline,
    reference_pipeline,
    reference_weights,
    renderer_version,
)
from generator.simworld import render_scene


def street_png(path: Path, seed: int, height: int, width: int) -> Path:
    Image.fromarray(render_scene(seed, size=(height, width), domain="real", water_heights=()).image).save(path)
    return path


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    return [street_png(folder / "odd.png", 3, 333, 517), street_png(folder / "tall.png", 4, 200, 120)]


@pytest.fixture(scope="module")
def reference() -> FloodPipeline:
    return reference_pipeline()


def untrained_pipeline(**options) -> FloodPipeline:
    torch.manual_seed(0)
    return FloodPipeline(build_masker(tiny_masker_config()), build_painter(tiny_painter_config()),
                         backend="test-untrained", versions={"masker": "m0", "painter": "p0"},
                         options=PipelineOptions(**{"size": 64, **options}))


def randomize_batchnorm(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            if module.affine:  # ClimateGAN's SPADE normalises without parameters
                module.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)


@pytest.mark.parametrize("config", [tiny_masker_config, ClimateGANMaskerConfig], ids=["tiny", "climategan"])
def test_fold_batchnorm_keeps_every_head_of_the_masker(config) -> None:
    torch.manual_seed(0)
    masker = build_masker(config()).eval()
    fold_spectral_norm(masker)  # as the pipeline does first: a parametrized conv is not folded
    randomize_batchnorm(masker)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before = output_tensors(masker(x))
    count = sum(isinstance(m, nn.BatchNorm2d) for m in masker.modules())
    folded = fold_batchnorm(masker)
    assert folded == count - sum(isinstance(m, nn.BatchNorm2d) for m in masker.modules()) > 0
    with torch.no_grad():
        after = output_tensors(masker(x))
    assert {"mask", "mask_logits", "depth", "segmentation"} <= set(before) and set(after) == set(before)
    for head, expected in before.items():
        torch.testing.assert_close(after[head], expected, atol=1e-4, rtol=1e-4, msg=head)
    if config is tiny_masker_config:
        assert folded == count  # every BN of this project's masker sits right after its conv


def test_fold_batchnorm_folds_only_a_conv_whose_output_nothing_else_uses() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
            self.shared, self.bn_a, self.bn_b = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.BatchNorm2d(3)
            self.head = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU())

        def forward(self, x):
            residual = self.conv(x)  # also added below: folding would change the sum
            y = self.bn(residual) + residual
            y = self.bn_a(self.shared(y)) + self.bn_b(self.shared(x))  # one conv, two BNs
            return self.head(y)

    model = Block().eval()
    randomize_batchnorm(model)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == 1 and isinstance(model.head[1], nn.Identity)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    assert isinstance(model.bn, nn.BatchNorm2d) and isinstance(model.bn_a, nn.BatchNorm2d)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))


def test_the_pipeline_with_folding_matches_it_without_on_every_head() -> None:
    """Masker heads (mask, depth, segmentation) and the painter, folded pipeline vs unfolded."""
    torch.manual_seed(0)
    masker, painter = build_masker(tiny_masker_config()), build_painter(tiny_painter_config())
    randomize_batchnorm(masker)
    masker.eval()
    state = (masker.state_dict(), painter.state_dict())

    def pipeline(fold: bool) -> FloodPipeline:
        m, p = build_masker(tiny_masker_config()), build_painter(tiny_painter_config())
        m.load_state_dict(state[0])
        p.load_state_dict(state[1])
        return FloodPipeline(m, p, backend="test-untrained", versions={"masker": "m0", "painter": "p0"},
                             options=PipelineOptions(size=64, fold_batchnorm=fold))

    folded, plain = pipeline(True), pipeline(False)
    assert folded.folded["masker"] > 0 and plain.folded["masker"] == 0
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = (torch.rand(2, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        heads = [output_tensors(folded.masker(x)), output_tensors(plain.masker(x))]
        heads = [{**h, **output_tensors(pipe.painter(x * (1 - mask), mask))}
                 for h, pipe in zip(heads, (folded, plain), strict=True)]
    assert set(heads[0]) == {"mask", "mask_logits", "depth", "segmentation", "image"}
    for head, expected in heads[1].items():
        torch.testing.assert_close(heads[0][head], expected, atol=1e-4, rtol=1e-4, msg=head)


def test_reference_backend_uses_the_tiny_simulated_world_checkpoints(reference: FloodPipeline) -> None:
    assert reference_weights() is not None, "generator/weights/ should hold the tiny checkpoints"
    assert reference.backend == LEARNED_BACKEND and reference.size == REFERENCE_SIZE
    assert reference.model_version == f"{reference.versions['masker']}-{reference.versions['painter']}"
    assert reference.folded["masker"] > 0


def test_flood_real_files_end_to_end_keeps_size_and_pixels_outside_the_mask(
    reference: FloodPipeline, photo_files: list[Path]
) -> None:
    images = [Image.open(path) for path in photo_files]
    outputs = reference.flood_batch(images, threshold=0.5, seed=7)
    for path, out in zip(photo_files, outputs, strict=True):
        source = np.asarray(Image.open(path).convert("RGB"))
        assert out.image.shape == source.shape and out.image.dtype == np.uint8
        assert out.mask.shape == source.shape[:2] and set(np.unique(out.mask)) <= {0, 255}
        water = out.mask == 255
        assert 0.02 < water.mean() < 0.98, "a street scene should be partly flooded"
        assert np.array_equal(out.image[~water], source[~water])
        assert np.abs(out.image[water].astype(int) - source[water]).mean() > 5
        assert out.backend == LEARNED_BACKEND and out.batch_size == 2
        assert out.params == {"event": "flood", "threshold": 0.5, "size": REFERENCE_SIZE,
                              "frame": "pad", "seed": 7, "precision": "fp32"}
        assert {"preprocess", "masker", "painter", "postprocess", "total"} <= set(out.timings_ms)


def test_flood_matches_the_single_image_result_when_batched(reference: FloodPipeline,
                                                            photo_files: list[Path]) -> None:
    image = np.asarray(Image.open(photo_files[0]).convert("RGB"))
    alone = reference.flood_batch([image])[0]
    batched = reference.flood_batch([image, np.asarray(Image.open(photo_files[1]))])[0]
    assert (alone.mask != batched.mask).mean() < 0.001
    assert np.abs(alone.image.astype(int) - batched.image).mean() < 0.5


@pytest.mark.parametrize("frame", ["pad", "crop"])
def test_untrained_models_odd_sizes_and_bf16_autocast(frame: str) -> None:
    pipeline = untrained_pipeline(frame=frame, precision="bf16")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (333, 517, 3), dtype=np.uint8)
    for threshold in (0.3, 0.7):
        out = pipeline.flood_batch([image], threshold=threshold)[0]
        assert out.image.shape == image.shape and out.mask.shape == image.shape[:2]
        water = out.mask == 255
        assert np.array_equal(out.image[~water], image[~water])
        assert out.params["precision"] == "bf16" and out.params["frame"] == frame
    if frame == "crop":  # the crop only sees the centre: nothing outside it may be flooded
        assert not pipeline.flood_batch([image], threshold=0.0)[0].mask[:, :40].any()
    else:
        assert pipeline.flood_batch([image], threshold=0.0)[0].mask.all()


@pytest.mark.parametrize("event", ["smog", "wildfire"])
@pytest.mark.parametrize("backend", ["reference", "nonlearned"])
def test_smog_and_wildfire_produce_different_images_of_the_same_size(
    event: str, backend: str, reference: FloodPipeline, photo_files: list[Path]
) -> None:
    pipeline = reference if backend == "reference" else nonlearned_pipeline(PipelineOptions(size=128))
    source = np.asarray(Image.open(photo_files[0]).convert("RGB"))
    out = pipeline.flood_batch([source], event=event, seed=1)[0]
    assert out.image.shape == source.shape and out.mask.shape == source.shape[:2]
    assert np.abs(out.image.astype(int) - source).mean() > 10
    assert out.event == event and out.params["event"] == event and "painter" not in out.timings_ms
    if event == "smog":  # haze grows with distance: the bottom rows are nearer than the top ones
        assert out.mask[-20:].mean() < out.mask[:20].mean()


def test_nonlearned_wildfire_puts_fire_in_the_sky() -> None:
    sky_over_road = np.zeros((160, 200, 3), np.uint8)
    sky_over_road[:70] = (150, 190, 235)
    sky_over_road[70:] = (70, 70, 70)
    out = nonlearned_pipeline(PipelineOptions(size=128)).flood_batch([sky_over_road], "wildfire")[0]
    assert out.mask[:40].mean() > 150 and out.mask[-30:].mean() < 30
    top = out.image[:40].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[2] < 80  # red-orange


def test_wildfire_blend_is_the_effects_wildfire() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    labels = np.full((96, 128), 4)
    labels[:30, 20:90] = effects.SKY_CLASS
    expected = effects.wildfire(rgb, labels, seed=5)
    got = wildfire_blend(rgb, effects.fire_sky_weight(labels), seed=5)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_nonlearned_renderer_floods_the_bottom_and_reflects_the_scene(photo_files: list[Path]) -> None:
    pipeline = nonlearned_pipeline(PipelineOptions(size=256))
    source = np.asarray(Image.open(photo_files[0]).convert("RGB"))
    out = pipeline.flood_batch([source])[0]
    water = out.mask == 255
    assert out.backend == NONLEARNED_BACKEND
    assert water[-10:].all() and not water[:50].any()
    assert np.array_equal(out.image[~water], source[~water])
    assert out.image[water].std() > 5, "reflections and ripples, not a flat colour"
    assert renderer_version() == renderer_version(RendererParams())
    assert renderer_version(RendererParams(water_level=0.5)) != renderer_version()


def test_invalid_arguments_are_refused() -> None:
    pipeline = untrained_pipeline()
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="event"):
        pipeline.flood_batch([image], event="tsunami")
    with pytest.raises(ValueError, match="multiple"):
        pipeline.flood_batch([image], size=72)
    with pytest.raises(ValueError, match="seeds"):
        pipeline.flood_batch([image], seed=[1, 2])
    assert pipeline.flood_batch([]) == []


def test_throughput_benchmark_tiny_cpu_prints_figures(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "generator_throughput.py"
    spec = importlib.util.spec_from_file_location("generator_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--tiny", "--device", "cpu", "--size", "64", "--batch-sizes", "1,2",
                        "--dtypes", "fp32,bf16", "--iters", "1", "--warmup", "0", "--json",
                        "--peak-tflops", "1.0"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["dtype"], r["batch"]) for r in rows] == [("fp32", 1), ("fp32", 2), ("bf16", 1), ("bf16", 2)]
    for row in rows:
        assert row["images_per_s"] > 0 and row["gflops_per_image"] > 0
        assert row["mfu"] == pytest.approx(row["achieved_tflops"] / 1.0, abs=1e-4)
    assert module.peak_tflops("NVIDIA H100 80GB HBM3", "bf16", torch.device("cuda"), None) == (989.0, "bf16")
    assert module.peak_tflops("NVIDIA H100 PCIe", "bf16", torch.device("cuda"), None)[0] == 756.0
