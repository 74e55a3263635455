"""SPADE normalisation and residual block (Park et al., 2019), names as in the SPADE code.

SPADE: parameter-free instance norm, then a spatially varying affine map predicted from a
conditioning image: ``IN(x) * (1 + gamma(c)) + beta(c)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from generator.models.common import conv2d


class SPADE(nn.Module):
    def __init__(self, num_features: int, cond_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(num_features, affine=False)
        self.mlp_shared = nn.Sequential(conv2d(cond_channels, hidden, 3), nn.ReLU())
        self.mlp_gamma = conv2d(hidden, num_features, 3)
        self.mlp_beta = conv2d(hidden, num_features, 3)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="bilinear", align_corners=False)
        actv = self.mlp_shared(cond)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Two SPADE -> LeakyReLU -> 3x3 conv stages plus a (learned, if widths differ) shortcut.

    Spectral norm (optional) applies to the block's convolutions, not to SPADE's own.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        cond_channels: int,
        hidden: int = 128,
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = conv2d(fin, fmiddle, 3, use_spectral_norm=use_spectral_norm)
        self.conv_1 = conv2d(fmiddle, fout, 3, use_spectral_norm=use_spectral_norm)
        self.norm_0 = SPADE(fin, cond_channels, hidden)
        self.norm_1 = SPADE(fmiddle, cond_channels, hidden)
        if self.learned_shortcut:
            self.conv_s = conv2d(fin, fout, 1, bias=False, use_spectral_norm=use_spectral_norm)
            self.norm_s = SPADE(fin, cond_channels, hidden)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        return shortcut + dx
