"""The published ClimateGAN painter, layer for layer (inference; spectral norm folded).

Parameter names are the release's without the ``painter.`` prefix and the spectral-norm
wrapper. The masked image, resized (nearest) to ``H / 2**n`` (5x5 at 640², n = 7), goes through
the 3x3 conv ``fc``; SPADE blocks ``head_0``, ``G_middle_0``, ``G_middle_1`` (full latent width)
and ``up_spades`` (halving it) with a nearest 2x upsampling after ``head_0``, after
``G_middle_0`` and before each ``up_spade``; ``final_spade`` at full resolution; then
LeakyReLU, a 3x3 conv to RGB and tanh. Every block is conditioned on the masked image alone,
resized (nearest) from full resolution to the block's; no noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import ClimateGANPainterConfig
from generator.models.climategan_masker import upsample_nearest_2x
from generator.models.spade import SPADEResnetBlock


class ClimateGANPainter(nn.Module):
    def __init__(self, cfg: ClimateGANPainterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        latent = cfg.latent_channels

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, 3, 128, False, norm=cfg.param_free_norm,
                                    interpolation="nearest")

        self.fc = nn.Conv2d(3, latent, 3, padding=1)
        self.head_0 = block(latent, latent)
        self.G_middle_0 = block(latent, latent)
        self.G_middle_1 = block(latent, latent)
        self.up_spades = nn.Sequential(*[
            block(latent // 2**i, latent // 2 ** (i + 1)) for i in range(cfg.num_upsamplings - 2)
        ])
        final = latent // 2 ** (cfg.num_upsamplings - 2)
        self.final_spade = block(final, final)
        self.conv_img = nn.Conv2d(final, 3, 3, padding=1)

    def forward(self, masked_image: Tensor, mask: Tensor | None = None) -> Tensor:
        """``masked_image = x * (1 - m)`` in [-1, 1] (N,3,H,W), sides multiples of
        ``2**num_upsamplings``. ``mask`` is accepted for the common painter interface and not
        used: the published painter sees the masked image only. Returns RGB in [-1, 1]."""
        del mask
        height, width = masked_image.shape[-2:]
        multiple = self.cfg.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"painter input must have sides that are multiples of {multiple}, got {height}x{width}"
            )
        cond = masked_image
        latent_size = (height // multiple, width // multiple)
        y = self.fc(F.interpolate(cond, size=latent_size, mode="nearest"))
        y = upsample_nearest_2x(self.head_0(y, cond))
        y = upsample_nearest_2x(self.G_middle_0(y, cond))
        y = self.G_middle_1(y, cond)
        for up in self.up_spades:
            y = up(upsample_nearest_2x(y), cond)
        y = self.final_spade(y, cond)
        return torch.tanh(self.conv_img(F.leaky_relu(y, 0.2)))

    def paint(self, x: Tensor, m: Tensor) -> Tensor:
        """Flood composite ``x * (1 - m) + P(x * (1 - m)) * m``."""
        masked = x * (1 - m)
        return masked + self(masked) * m
