"""Losses of the masker and the painter, with the normalisations of ``shared/spec/generator.md``.

Shapes: masks and probabilities (N,1,H,W); images (N,3,H,W) in [-1, 1]; segmentation logits
(N,C,H,W); labels (N,H,W) of class indices. "Real" means unlabelled photos, "sim" the simulated
world. Functions that take probabilities clamp them to ``[EPS, 1 - EPS]`` before logarithms.

The training code of ``generator.train`` uses the ``*_loss`` aliases at the end of the module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import LossWeights
from generator.models.vgg import VGG_LAYER_WEIGHTS, VGG19Features

# Probabilities are clamped to [EPS, 1 - EPS] (in float32) inside logarithms. 1e-8 would not do:
# 1 - 1e-8 rounds to 1.0 in float32, so a saturated sigmoid gave log(0) and NaN losses.
EPS = 1e-7


def _per_pixel_denominator(x: Tensor) -> int:
    """N·H·W of an (N,C,H,W) tensor (channels are summed, not averaged)."""
    return x.shape[0] * x.shape[-2] * x.shape[-1]


# ----------------------------------------------------------------------------- masker


def bce_mask(mask_logits: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy of the predicted mask (given as logits, for numerical stability)
    against the ground-truth mask in [0, 1], averaged over N·H·W."""
    return F.binary_cross_entropy_with_logits(mask_logits, target.to(mask_logits.dtype))


def minent(prob: Tensor) -> Tensor:
    """Entropy over both classes, ``-Σ [p log p + (1-p) log(1-p)] / (N·H·W·log 2)``; in [0, 1]."""
    p = prob.float()
    clamped = p.clamp(EPS, 1 - EPS)  # only inside the logs: p in {0, 1} still weighs its term by 0
    entropy = -(p * torch.log(clamped) + (1 - p) * torch.log(1 - clamped))
    return entropy.sum() / (_per_pixel_denominator(prob) * math.log(2))


def total_variation(mask: Tensor) -> Tensor:
    """``Σ |m[h+1,w] - m[h,w]| + |m[h,w+1] - m[h,w]|`` divided by N·H·W."""
    vertical = (mask[..., 1:, :] - mask[..., :-1, :]).abs().sum()
    horizontal = (mask[..., :, 1:] - mask[..., :, :-1]).abs().sum()
    return (vertical + horizontal) / _per_pixel_denominator(mask)


def ground_intersection(prob: Tensor, ground: Tensor, hard: bool = False) -> Tensor:
    """Penalise ground (from a segmentation pseudo-label, in [0, 1]) that the mask leaves dry.

    Soft (default, differentiable): ``mean(relu(ground - p))``. Hard (the published version, no
    useful gradient): share of pixels where ``ground - p > 0.5``.
    """
    gap = ground.to(prob.dtype) - prob
    if hard:
        return (gap > 0.5).to(prob.dtype).mean()
    return F.relu(gap).mean()


def self_information(prob: Tensor) -> Tensor:
    """``I = -m ⊙ log m`` (the map the masker's discriminator looks at)."""
    return -prob * torch.log(prob.float().clamp_min(EPS)).to(prob.dtype)


def wgan_generator(scores_real: Tensor) -> Tensor:
    """Masker side: make real predictions look simulated, ``-mean D(I_real)``."""
    return -scores_real.mean()


def wgan_discriminator(scores_sim: Tensor, scores_real: Tensor) -> Tensor:
    """Critic side: ``-mean(D(I_sim) - D(I_real))`` (sim scores high, real scores low)."""
    return -(scores_sim.mean() - scores_real.mean())


def berhu(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Reverse Huber: ``|e|`` when ``|e| <= c``, ``(e² + c²) / 2c`` beyond, ``c = 0.2 max|e|``
    over the batch (treated as a constant). Averaged over the (valid) pixels."""
    error = (pred - target.to(pred.dtype)).abs()
    if valid is not None:
        error = error[valid.expand_as(error).bool()]
    if error.numel() == 0:
        return pred.sum() * 0
    c = 0.2 * error.detach().max()
    if c <= 0:
        return error.mean()
    quadratic = (error**2 + c**2) / (2 * c)
    return torch.where(error <= c, error, quadratic).mean()


def segmentation_ce(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Cross-entropy over classes, averaged over the labelled pixels."""
    return F.cross_entropy(logits, labels.long(), ignore_index=ignore_index)


def segmentation_minent(prob: Tensor) -> Tensor:
    """ADVENT entropy of softmax probabilities (N,C,H,W): ``-Σ_c p log p / (N·H·W·log C)``."""
    entropy = -(prob.float() * torch.log(prob.float().clamp_min(EPS))).sum()
    return entropy / (_per_pixel_denominator(prob) * math.log(prob.shape[1]))


def masker_total(terms: Mapping[str, Tensor], weights: LossWeights) -> Tensor:
    """Weighted sum of the terms present, keyed by :class:`LossWeights` field names
    (``gan, ce, me, tv, gi, depth, seg_ce, seg_me, seg_gan``); unknown names raise KeyError."""
    known = weights.to_dict()
    unknown = sorted(set(terms) - set(known))
    if unknown:
        raise KeyError(f"unknown masker loss terms {unknown}; expected some of {sorted(known)}")
    if not terms:
        raise ValueError("masker_total needs at least one term")
    return sum(known[name] * value for name, value in terms.items())  # type: ignore[return-value]


# ----------------------------------------------------------------------------- painter


def _scores(outputs: Sequence[Tensor | Sequence[Tensor]]) -> list[Tensor]:
    """Accept per-scale score maps or the discriminator's per-scale feature lists (last = score)."""
    return [o if isinstance(o, Tensor) else o[-1] for o in outputs]


def gan_generator(fake_outputs: Sequence[Tensor | Sequence[Tensor]], mode: str = "hinge") -> Tensor:
    """Painter side, averaged over scales. ``lsgan``: ``mean((D(fake) - 1)²)``; ``hinge``:
    ``-mean D(fake)``."""
    scores = _scores(fake_outputs)
    if mode == "lsgan":
        per_scale = [((s - 1) ** 2).mean() for s in scores]
    elif mode == "hinge":
        per_scale = [-s.mean() for s in scores]
    else:
        raise ValueError(f"unknown GAN mode {mode!r}")
    return torch.stack(per_scale).mean()


def gan_discriminator(
    real_outputs: Sequence[Tensor | Sequence[Tensor]],
    fake_outputs: Sequence[Tensor | Sequence[Tensor]],
    mode: str = "hinge",
) -> Tensor:
    """Discriminator side, averaged over scales. ``lsgan``:
    ``0.5 (mean((D(real) - 1)²) + mean(D(fake)²))``; ``hinge``:
    ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    per_scale = []
    for real, fake in zip(_scores(real_outputs), _scores(fake_outputs), strict=True):
        if mode == "lsgan":
            per_scale.append(0.5 * (((real - 1) ** 2).mean() + (fake**2).mean()))
        elif mode == "hinge":
            per_scale.append(F.relu(1 - real).mean() + F.relu(1 + fake).mean())
        else:
            raise ValueError(f"unknown GAN mode {mode!r}")
    return torch.stack(per_scale).mean()


def feature_matching(
    real_features: Sequence[Sequence[Tensor]], fake_features: Sequence[Sequence[Tensor]]
) -> Tensor:
    """Mean absolute difference between the discriminator's intermediate features on real and
    painted images (the last item of each scale, the scores, is left out), averaged over layers
    and scales. Real features are detached."""
    per_layer = [
        F.l1_loss(fake, real.detach())
        for real_scale, fake_scale in zip(real_features, fake_features, strict=True)
        for real, fake in zip(real_scale[:-1], fake_scale[:-1], strict=True)
    ]
    if not per_layer:
        raise ValueError("feature matching needs at least one intermediate feature map")
    return torch.stack(per_layer).mean()


def vgg_perceptual(
    fake_features: Sequence[Tensor],
    real_features: Sequence[Tensor],
    layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS,
    distance: str = "l1",
) -> Tensor:
    """``Σ_l w_l · mean d(φ_l(fake), φ_l(real))`` with ``d`` L1 or squared L2; real detached."""
    if not len(fake_features) == len(real_features) == len(layer_weights):
        raise ValueError("need one weight per feature layer")
    loss_fn = {"l1": F.l1_loss, "l2": F.mse_loss}[distance]
    terms = [
        w * loss_fn(fake, real.detach())
        for fake, real, w in zip(fake_features, real_features, layer_weights, strict=True)
    ]
    return torch.stack(terms).sum()


class VGGPerceptualLoss(nn.Module):
    """``module(fake, real)`` -> :func:`vgg_perceptual` on VGG19 features (frozen network)."""

    def __init__(
        self,
        weights_path: str | Path | None = None,
        layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS,
        distance: str = "l1",
    ) -> None:
        super().__init__()
        self.vgg = VGG19Features(weights_path)
        self.layer_weights = tuple(layer_weights)
        self.distance = distance

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        with torch.no_grad():
            real_features = self.vgg(real)
        return vgg_perceptual(self.vgg(fake), real_features, self.layer_weights, self.distance)


def masked_reconstruction(painted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``‖m ⊙ (x - y)‖₁ / (N·H·W)``: L1 summed over channels inside the mask, divided by N·H·W."""
    return (mask * (target - painted)).abs().sum() / _per_pixel_denominator(painted)


# Names used by ``generator.train`` (same functions).
bce_loss = bce_mask
minent_loss = minent
tv_loss = total_variation
ground_intersection_loss = ground_intersection
wgan_generator_loss = wgan_generator
wgan_discriminator_loss = wgan_discriminator
berhu_loss = berhu
segmentation_ce_loss = segmentation_ce
segmentation_entropy_loss = segmentation_minent
painter_generator_loss = gan_generator
painter_discriminator_loss = gan_discriminator
feature_matching_loss = feature_matching
masked_reconstruction_loss = masked_reconstruction
