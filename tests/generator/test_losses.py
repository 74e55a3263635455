"""Each loss against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from generator import losses
from generator.config import LossWeights


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_bce_mask_matches_hand_value() -> None:
    # p = sigmoid(0) = 0.5 everywhere: -log 0.5 per pixel whatever the target.
    logits = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    target = torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    assert losses.bce_mask(logits, target).item() == pytest.approx(math.log(2))
    # one pixel, logit ln 3 -> p = 0.75; target 1 -> -ln 0.75; target 0 -> -ln 0.25.
    logit = t([[[[math.log(3), math.log(3)]]]])
    assert losses.bce_mask(logit, t([[[[1.0, 0.0]]]])).item() == pytest.approx(
        (-math.log(0.75) - math.log(0.25)) / 2
    )


def test_minent_normalisation() -> None:
    # p = 0.5: one bit per pixel -> 1; p in {0, 1}: 0.
    assert losses.minent(torch.full((2, 1, 3, 3), 0.5)).item() == pytest.approx(1.0)
    assert losses.minent(t([[[[0.0, 1.0]]]])).item() == pytest.approx(0.0, abs=1e-6)
    # p = 0.25 and 0.5 over N·H·W = 2 pixels: (H(0.25) + 1) / 2, H(0.25) = 0.811278 bits.
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert losses.minent(t([[[[0.25, 0.5]]]])).item() == pytest.approx((h + 1) / 2)


def test_total_variation_hand_value() -> None:
    mask = t([[[[0.0, 1.0], [1.0, 1.0]]]])
    # vertical |1-0| + |1-1| = 1, horizontal |1-0| + |1-1| = 1 -> 2 / (1·2·2).
    assert losses.total_variation(mask).item() == pytest.approx(0.5)
    batch = torch.cat([mask, torch.zeros_like(mask)])
    assert losses.total_variation(batch).item() == pytest.approx(2 / 8)


def test_ground_intersection_soft_and_hard() -> None:
    prob = t([[[[0.0, 0.4, 0.9, 1.0]]]])
    ground = t([[[[1.0, 1.0, 1.0, 0.0]]]])
    # soft: relu(1-0) + relu(1-0.4) + relu(1-0.9) + relu(0-1) = 1.7 -> / 4
    assert losses.ground_intersection(prob, ground).item() == pytest.approx(1.7 / 4)
    # hard: gaps 1.0, 0.6 exceed 0.5 -> 2 / 4
    assert losses.ground_intersection(prob, ground, hard=True).item() == pytest.approx(0.5)


def test_self_information_and_wgan() -> None:
    prob = t([0.5, 1.0, 0.0])
    assert torch.allclose(losses.self_information(prob), t([0.5 * math.log(2), 0.0, 0.0]))
    scores_real, scores_sim = t([1.0, 3.0]), t([4.0, 6.0])
    assert losses.wgan_generator(scores_real).item() == pytest.approx(-2.0)
    assert losses.wgan_discriminator(scores_sim, scores_real).item() == pytest.approx(-(5.0 - 2.0))


def test_berhu_hand_value() -> None:
    pred, target = t([0.0, 0.1, 1.0, 5.0]), t([0.0, 0.0, 0.0, 0.0])
    # c = 0.2 · 5 = 1; |e| <= 1 for 0, 0.1, 1 -> themselves; 5 -> (25 + 1) / 2 = 13.
    assert losses.berhu(pred, target).item() == pytest.approx((0 + 0.1 + 1 + 13) / 4)
    valid = t([1.0, 1.0, 1.0, 0.0])
    # without the last pixel: c = 0.2; 0 and 0.1 linear, 1 -> (1 + 0.04) / 0.4 = 2.6
    assert losses.berhu(pred, target, valid).item() == pytest.approx((0 + 0.1 + 2.6) / 3)
    assert losses.berhu(target, target).item() == 0.0


def test_berhu_gradient_flows() -> None:
    pred = t([0.0, 2.0]).requires_grad_()
    losses.berhu(pred, t([1.0, 0.0])).backward()
    # c = 0.4: both errors quadratic; d/de (e² + c²)/2c = e / c -> [-1/0.4, 2/0.4] / 2
    assert torch.allclose(pred.grad, t([-1.25, 2.5]))


def test_segmentation_ce_and_minent() -> None:
    logits = torch.zeros(1, 4, 1, 2, dtype=torch.float64)
    labels = torch.tensor([[[2, 255]]])
    assert losses.segmentation_ce(logits, labels).item() == pytest.approx(math.log(4))
    uniform = torch.full((1, 4, 2, 2), 0.25)
    assert losses.segmentation_minent(uniform).item() == pytest.approx(1.0)
    onehot = torch.zeros(1, 4, 1, 1)
    onehot[:, 1] = 1
    assert losses.segmentation_minent(onehot).item() == pytest.approx(0.0, abs=1e-6)


def test_masker_total_uses_weights() -> None:
    terms = {name: torch.tensor(1.0) for name in ("gan", "ce", "me", "tv", "gi")}
    assert losses.masker_total(terms, LossWeights()).item() == pytest.approx(1 + 1 + 0.5 + 1 + 0.05)
    assert losses.masker_total({"depth": torch.tensor(2.0)}, LossWeights(depth=3)).item() == 6.0
    with pytest.raises(KeyError, match="bogus"):
        losses.masker_total({"bogus": torch.tensor(1.0)}, LossWeights())


def test_painter_gan_losses_hand_values() -> None:
    fake = [t([[0.5, -1.0]]), t([[2.0]])]
    real = [t([[1.5, 0.0]]), t([[-0.5]])]
    # lsgan G: scale 1: ((−0.5)² + (−2)²)/2 = 2.125; scale 2: 1 -> mean 1.5625
    assert losses.gan_generator(fake, "lsgan").item() == pytest.approx(1.5625)
    # hinge G: -mean: scale 1: 0.25, scale 2: -2 -> -0.875
    assert losses.gan_generator(fake, "hinge").item() == pytest.approx(-0.875)
    # lsgan D scale 1: 0.5·(((0.5)² + 1)/2 + (0.25 + 1)/2) = 0.625
    #          scale 2: 0.5·(2.25 + 4) = 3.125 -> mean 1.875
    assert losses.gan_discriminator(real, fake, "lsgan").item() == pytest.approx(1.875)
    # hinge D scale 1: mean(relu(1-1.5), relu(1-0)) = 0.5; mean(relu(1.5), relu(0)) = 0.75 -> 1.25
    #         scale 2: relu(1.5) = 1.5; relu(3) = 3 -> 4.5; mean 2.875
    assert losses.gan_discriminator(real, fake, "hinge").item() == pytest.approx(2.875)
    # feature lists are accepted too: last item = scores
    as_features = [[torch.zeros(1), f] for f in fake]
    assert losses.gan_generator(as_features, "hinge").item() == pytest.approx(-0.875)
    with pytest.raises(ValueError):
        losses.gan_generator(fake, "wasserstein")


def test_feature_matching_averages_layers_and_scales() -> None:
    real = [[t([0.0, 0.0]), t([1.0]), t([9.0])], [t([2.0]), t([5.0])]]
    fake = [[t([1.0, 3.0]), t([1.5]), t([-9.0])], [t([4.0]), t([-5.0])]]
    # scale 1 layers: mean|..| = 2, 0.5; scale 2: 2 (scores excluded) -> (2 + 0.5 + 2) / 3
    assert losses.feature_matching(real, fake).item() == pytest.approx(1.5)


def test_vgg_perceptual_weights_layers() -> None:
    fake = [t([1.0, 1.0]), t([0.0])]
    real = [t([0.0, 2.0]), t([2.0])]
    assert losses.vgg_perceptual(fake, real, (0.5, 2.0)).item() == pytest.approx(0.5 * 1 + 2 * 2)
    assert losses.vgg_perceptual(fake, real, (0.5, 2.0), "l2").item() == pytest.approx(0.5 + 8)


def test_vgg_perceptual_module_zero_on_identical_images() -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        module = losses.VGGPerceptualLoss()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert module(x, x).item() == 0.0
    assert module(x, -x).item() > 0


def test_masked_reconstruction_hand_value() -> None:
    target = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    painted = torch.ones(1, 3, 2, 2, dtype=torch.float64)
    mask = t([[[[1.0, 0.0], [0.5, 0.0]]]])
    # Σ over channels and pixels of m·|x - y| = 3·(1 + 0.5) = 4.5, / (N·H·W = 4)
    assert losses.masked_reconstruction(painted, target, mask).item() == pytest.approx(4.5 / 4)


def test_aliases_used_by_training_point_to_the_same_functions() -> None:
    assert losses.bce_loss is losses.bce_mask
    assert losses.masked_reconstruction_loss is losses.masked_reconstruction
    assert losses.segmentation_entropy_loss is losses.segmentation_minent


def test_entropy_losses_stay_finite_when_the_mask_saturates():
    # A confident masker: sigmoid of large logits is exactly 0.0 and 1.0 in float32.
    logits = torch.tensor([[[[200.0, -200.0], [0.0, 200.0]]]], requires_grad=True)
    prob = torch.sigmoid(logits)
    assert prob[0, 0, 0, 0].item() == 1.0 and prob[0, 0, 0, 1].item() == 0.0
    loss = losses.minent(prob) + losses.self_information(prob).mean()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert losses.minent(prob).item() == pytest.approx(0.25, abs=1e-3)  # only the 0.5 pixel is uncertain
