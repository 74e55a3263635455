"""SPADE painter (GauGAN generator without noise, as in ClimateGAN).

The masked image is average-pooled to ``H / 2**n`` (5x5 for 640 and n = 7) and projected by a
3x3 conv to ``latent_channels``; SPADE residual blocks ``head_0``, ``G_middle_0``,
``G_middle_1`` keep that width and ``up_spades`` halve it, with a nearest 2x upsampling between
consecutive blocks (n in all); a final LeakyReLU -> 3x3 conv -> tanh gives RGB in [-1, 1].
Every block is conditioned on the masked image (and the mask, by default) average-pooled to the
block's resolution; the pyramid is computed once per forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import PainterConfig
from generator.models.common import conv2d
from generator.models.spade import SPADEResnetBlock


def compose(x: Tensor, painted: Tensor, m: Tensor) -> Tensor:
    """``y = painted * m + x * (1 - m)``: keep the photo outside the (soft) mask."""
    return painted * m + x * (1 - m)


class Painter(nn.Module):
    def __init__(self, cfg: PainterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        latent, cond, hidden, sn = (
            cfg.latent_channels,
            cfg.conditioning_channels,
            cfg.spade_hidden,
            cfg.spectral_norm,
        )
        self.fc = conv2d(3, latent, 3)
        self.head_0 = SPADEResnetBlock(latent, latent, cond, hidden, sn)
        self.G_middle_0 = SPADEResnetBlock(latent, latent, cond, hidden, sn)
        self.G_middle_1 = SPADEResnetBlock(latent, latent, cond, hidden, sn)
        self.up_spades = nn.ModuleList(
            SPADEResnetBlock(latent // 2**i, latent // 2 ** (i + 1), cond, hidden, sn)
            for i in range(cfg.num_upsamplings - 2)
        )
        self.conv_img = conv2d(latent // 2 ** (cfg.num_upsamplings - 2), 3, 3)

    def forward(self, masked_image: Tensor, mask: Tensor) -> Tensor:
        """``masked_image = x * (1 - m)`` in [-1, 1] (N,3,H,W), ``mask`` (N,1,H,W) in [0, 1].

        Returns the painted image (N,3,H,W) in [-1, 1]; combine with :func:`compose`.
        """
        height, width = masked_image.shape[-2:]
        multiple = self.cfg.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"painter input must have sides that are multiples of {multiple}, got {height}x{width}"
            )
        cond = torch.cat([masked_image, mask], dim=1) if self.cfg.condition_on_mask else masked_image
        # pyramid[k] is the conditioning at 1 / 2**k of the input resolution.
        pyramid = [cond]
        for _ in range(self.cfg.num_upsamplings):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        level = self.cfg.num_upsamplings

        x = self.fc(pyramid[level][:, :3])
        x = self.head_0(x, pyramid[level])
        for block in [self.G_middle_0, self.G_middle_1, *self.up_spades]:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            level -= 1
            x = block(x, pyramid[level])
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def paint(self, x: Tensor, m: Tensor) -> Tensor:
        """Full flood composite from a photo ``x`` in [-1, 1] and a mask ``m`` in [0, 1]."""
        painted = self(x * (1 - m), m)
        return compose(x, painted, m)
