"""Output shapes, gradient flow and seeded determinism of every network (tiny configs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from generator.config import (
    BackboneConfig,
    MaskerConfig,
    PainterConfig,
    tiny_masker_config,
    tiny_painter_config,
)
from generator.models import (
    Masker,
    Painter,
    build_masker,
    build_masker_discriminator,
    build_painter,
    build_painter_discriminator,
    compose,
)
from generator.models.backbones import build_backbone
from generator.models.common import fold_spectral_norm
from generator.models.masker import minmax_normalize
from generator.models.vgg import VGG19Features


def _assert_every_parameter_has_gradient(model: nn.Module) -> None:
    without = [name for name, p in model.named_parameters() if p.grad is None]
    assert not without, f"parameters without gradient: {without}"
    zero = [name for name, p in model.named_parameters() if not torch.any(p.grad != 0)]
    assert not zero, f"parameters with an all-zero gradient: {zero}"


@pytest.mark.parametrize("size", [(64, 64), (72, 96), (100, 60)])
def test_masker_outputs_at_input_resolution(tiny_masker: Masker, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    out = tiny_masker(x)
    assert out.mask.shape == (2, 1, *size)
    assert out.mask_logits.shape == (2, 1, *size)
    assert out.depth is not None and out.depth.shape == (2, 1, *size)
    assert out.segmentation is not None and out.segmentation.shape == (2, 11, *size)
    assert torch.allclose(out.mask, torch.sigmoid(out.mask_logits))
    assert out.mask.min() >= 0 and out.mask.max() <= 1


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_backbone_output_stride(name: str, output_stride: int) -> None:
    backbone = build_backbone(BackboneConfig(name, output_stride, width_multiplier=0.125))
    low, high = backbone(torch.rand(1, 3, 64, 96))
    assert low.shape == (1, backbone.low_level_channels, 16, 24)
    assert high.shape == (1, backbone.out_channels, 64 // output_stride, 96 // output_stride)


def test_masker_without_auxiliary_heads() -> None:
    cfg = tiny_masker_config()
    cfg.use_depth = False
    cfg.use_segmentation = False
    assert cfg.conditioning_channels == 3
    out = build_masker(cfg)(torch.rand(1, 3, 64, 64))
    assert out.depth is None and out.segmentation is None
    assert out.mask.shape == (1, 1, 64, 64)


def test_masker_conditioning_has_fifteen_channels() -> None:
    assert MaskerConfig().conditioning_channels == 15


def test_minmax_normalize_per_image() -> None:
    depth = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]], [[[0.0, 0.0], [0.0, 10.0]]]])
    normalized = minmax_normalize(depth)
    assert torch.allclose(normalized[0].flatten(), torch.tensor([0.0, 0.5, 0.25, 1.0]), atol=1e-5)
    assert torch.allclose(normalized[1].flatten(), torch.tensor([0.0, 0.0, 0.0, 1.0]), atol=1e-5)


def test_masker_gradient_reaches_every_parameter(tiny_masker: Masker) -> None:
    out = tiny_masker(torch.rand(2, 3, 64, 64) * 2 - 1)
    loss = out.mask.mean() + out.depth.pow(2).mean() + out.segmentation.pow(2).mean()
    loss.backward()
    _assert_every_parameter_has_gradient(tiny_masker)


@pytest.mark.parametrize("size", [(64, 64), (128, 64), (48, 80)])
def test_painter_output_shape_and_range(tiny_painter: Painter, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    m = (torch.rand(2, 1, *size) > 0.5).float()
    painted = tiny_painter(x * (1 - m), m)
    assert painted.shape == (2, 3, *size)
    assert painted.min() >= -1 and painted.max() <= 1


def test_painter_rejects_sizes_not_multiple_of_two_to_the_upsamplings(tiny_painter: Painter) -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        tiny_painter(torch.zeros(1, 3, 40, 64), torch.zeros(1, 1, 40, 64))


def test_painter_channel_schedule_matches_spec() -> None:
    cfg = PainterConfig()
    widths = [cfg.latent_channels // 2**i for i in range(cfg.num_upsamplings - 1)]
    assert cfg.size_multiple == 128 and 640 // cfg.size_multiple == 5
    assert widths == [640, 320, 160, 80, 40, 20]
    small = build_painter(tiny_painter_config())
    assert small.head_0.conv_0.in_channels == 64
    assert [b.conv_1.out_channels for b in small.up_spades] == [32, 16]


def test_painter_gradient_reaches_every_parameter(tiny_painter: Painter) -> None:
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = torch.rand(2, 1, 64, 64)
    tiny_painter.paint(x, m).pow(2).mean().backward()
    _assert_every_parameter_has_gradient(tiny_painter)


def test_compose_keeps_photo_outside_mask() -> None:
    x = torch.full((1, 3, 2, 2), 0.5)
    painted = torch.full((1, 3, 2, 2), -1.0)
    m = torch.tensor([[[[1.0, 0.0], [0.25, 0.0]]]])
    y = compose(x, painted, m)
    assert torch.allclose(y[0, 0], torch.tensor([[-1.0, 0.5], [0.125, 0.5]]))


def test_painter_ignores_hidden_pixels_values() -> None:
    torch.manual_seed(1)
    painter = build_painter(tiny_painter_config()).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    m = torch.zeros(1, 1, 32, 32)
    m[..., 8:24, 8:24] = 1
    other = x.clone()
    other[..., 8:24, 8:24] = 0.9  # change only what the mask hides
    assert torch.equal(painter.paint(x, m), painter.paint(x, m))
    with torch.no_grad():
        assert torch.allclose(painter(x * (1 - m), m), painter(other * (1 - m), m))


def test_masker_discriminator_shapes_and_gradient() -> None:
    disc = build_masker_discriminator(tiny_masker_config())
    scores = disc(torch.rand(2, 1, 64, 96))
    assert scores.shape == (2, 1, 7, 11)
    scores.mean().backward()
    _assert_every_parameter_has_gradient(disc)


def test_painter_discriminator_returns_features_per_scale() -> None:
    cfg = tiny_painter_config()
    disc = build_painter_discriminator(cfg)
    outputs = disc(torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64))
    assert len(outputs) == 3
    for scale, features in enumerate(outputs):
        assert len(features) == cfg.discriminator.num_layers + 1
        assert features[-1].shape[:2] == (2, 1)
        assert features[0].shape[-1] == 64 // 2 ** (scale + 1) + 1
    sum(f[-1].mean() for f in outputs).backward()
    _assert_every_parameter_has_gradient(disc)
    with pytest.raises(ValueError, match="mask"):
        disc(torch.rand(1, 3, 32, 32))


def test_vgg_features_shapes_and_frozen() -> None:
    with pytest.warns(UserWarning, match="random weights"):
        vgg = VGG19Features()
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_vgg_loads_local_weights_and_drops_classifier(tmp_path) -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        source = VGG19Features()
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    state["features.30.weight"] = torch.zeros(1)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = VGG19Features(weights_path=path)
    assert torch.equal(loaded.features[0].weight, source.features[0].weight)


def test_pretrained_backbone_loads_from_local_file(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = BackboneConfig("resnet18", width_multiplier=0.125)
    reference = build_backbone(cfg)
    state = dict(reference.state_dict())
    state["fc.weight"] = torch.zeros(10, 64)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    torch.manual_seed(1)
    loaded = build_backbone(BackboneConfig("resnet18", width_multiplier=0.125, pretrained_path=str(path)))
    assert torch.equal(loaded.conv1.weight, reference.conv1.weight)
    missing = BackboneConfig("resnet18", pretrained_path=str(tmp_path / "absent.pth"))
    with pytest.raises(FileNotFoundError):
        build_backbone(missing)


def test_seeded_construction_and_forward_are_deterministic() -> None:
    def run() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        torch.manual_seed(123)
        masker = build_masker(tiny_masker_config()).eval()
        painter = build_painter(tiny_painter_config()).eval()
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            m = masker(x).mask
            return masker.state_dict(), m, painter.paint(x, m)

    state_a, mask_a, out_a = run()
    state_b, mask_b, out_b = run()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(mask_a, mask_b) and torch.equal(out_a, out_b)


def test_fold_spectral_norm_preserves_eval_output() -> None:
    torch.manual_seed(0)
    painter = build_painter(tiny_painter_config())
    x, m = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    painter.train()
    painter(x, m)  # one power iteration so u, v are not at their initial values
    painter.eval()
    with torch.no_grad():
        before = painter(x, m)
        folded = fold_spectral_norm(painter)
        after = painter(x, m)
    assert folded > 0
    assert not any("parametrizations" in k for k in painter.state_dict())
    assert torch.allclose(before, after, atol=1e-5)


def test_flop_counter_matches_hand_count_and_meta() -> None:
    from generator.flops import count_flops

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    report = count_flops(model, [(2, 3, 16, 16)], on_meta=False)
    # per image: 16·16 positions × (8·3·9 + 2·8) multiply-adds
    assert report.multiply_adds == 2 * 16 * 16 * (8 * 3 * 9 + 2 * 8)
    assert report.parameters == 8 * 3 * 9 + 8 + 2 * 8 + 2
    assert count_flops(model, [(2, 3, 16, 16)]).flops == report.flops  # meta copy
    assert next(model.parameters()).device.type == "cpu"  # the model itself is untouched
