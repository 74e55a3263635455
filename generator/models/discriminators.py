"""Discriminators: the masker's self-information critic and the painter's multi-scale PatchGAN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import MaskDiscriminatorConfig, PatchDiscriminatorConfig
from generator.models.common import conv2d


class SelfInformationDiscriminator(nn.Module):
    """ADVENT-style fully convolutional critic on ``I = -m log m`` maps.

    4x4 stride-2 convs with LeakyReLU(0.2) over ``channels``, then a 4x4 conv to one channel:
    returns a patch map of scores (no sigmoid; used in WGAN form). Spectral norm keeps it
    Lipschitz without a gradient penalty.
    """

    def __init__(self, cfg: MaskDiscriminatorConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = cfg.in_channels
        for cout in cfg.channels:
            layers += [
                conv2d(cin, cout, 4, stride=2, padding=1, use_spectral_norm=cfg.spectral_norm),
                nn.LeakyReLU(0.2),
            ]
            cin = cout
        layers.append(conv2d(cin, 1, 4, padding=1, use_spectral_norm=cfg.spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, information: Tensor) -> Tensor:
        return self.net(information)


class PatchDiscriminator(nn.Module):
    """pix2pixHD / GauGAN N-layer PatchGAN; returns the output of every layer (last = scores)."""

    def __init__(self, in_channels: int, cfg: PatchDiscriminatorConfig) -> None:
        super().__init__()
        sn = cfg.spectral_norm
        stages: list[nn.Module] = [
            nn.Sequential(conv2d(in_channels, cfg.base_channels, 4, stride=2, padding=2), nn.LeakyReLU(0.2))
        ]
        cin = cfg.base_channels
        for n in range(1, cfg.num_layers):
            cout = min(cin * 2, cfg.max_channels)
            stride = 1 if n == cfg.num_layers - 1 else 2
            norm: nn.Module = nn.InstanceNorm2d(cout) if cfg.instance_norm else nn.Identity()
            stages.append(
                nn.Sequential(
                    conv2d(cin, cout, 4, stride=stride, padding=2, use_spectral_norm=sn),
                    norm,
                    nn.LeakyReLU(0.2),
                )
            )
            cin = cout
        stages.append(nn.Sequential(conv2d(cin, 1, 4, padding=2)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the image (and mask) at full, 1/2, 1/4 resolution.

    ``forward(image, mask)`` returns one list per scale of intermediate features; the last item
    of each list is the patch score map (for the GAN loss), the others feed feature matching.
    """

    def __init__(self, cfg: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        in_channels = 4 if cfg.condition_on_mask else 3
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, cfg) for _ in range(cfg.num_scales)
        )

    def forward(self, image: Tensor, mask: Tensor | None = None) -> list[list[Tensor]]:
        if self.cfg.condition_on_mask:
            if mask is None:
                raise ValueError("this discriminator is conditioned on the mask; pass it")
            x = torch.cat([image, mask], dim=1)
        else:
            x = image
        results = []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(discriminator(x))
        return results
