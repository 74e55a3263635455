"""SPADE-conditioned mask decoder.

From the encoder's ASPP features (stride 8), a 3x3 conv to ``channels[0]``, then SPADE residual
blocks ``channels[i] -> channels[i+1]``, each followed by a 2x bilinear upsampling (80² -> 640²
for a 640² input), then a 3x3 conv to one logit channel. The conditioning (image, min-max
normalised depth, softmaxed segmentation; 15 channels) is built by the masker at stride 4 and
resized once per block resolution.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import MaskDecoderConfig
from generator.models.common import conv2d
from generator.models.spade import SPADEResnetBlock


class MaskDecoder(nn.Module):
    def __init__(self, in_channels: int, cond_channels: int, cfg: MaskDecoderConfig) -> None:
        super().__init__()
        channels = cfg.channels
        if len(channels) < 2:
            raise ValueError("mask decoder needs at least two channel counts (one block)")
        self.input_conv = conv2d(in_channels, channels[0], 3, use_spectral_norm=cfg.spectral_norm)
        self.blocks = nn.ModuleList(
            SPADEResnetBlock(cin, cout, cond_channels, cfg.spade_hidden, cfg.spectral_norm)
            for cin, cout in zip(channels[:-1], channels[1:], strict=True)
        )
        self.output_conv = conv2d(channels[-1], 1, 3)
        self.upsampling_factor = 2 ** len(self.blocks)

    def forward(self, features: Tensor, cond: Tensor) -> Tensor:
        """Mask logits at ``features`` resolution times ``2**num_blocks``."""
        x = self.input_conv(features)
        for block in self.blocks:
            block_cond = cond
            if cond.shape[-2:] != x.shape[-2:]:
                block_cond = F.interpolate(cond, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = block(x, block_cond)
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.output_conv(F.leaky_relu(x, 0.2))
