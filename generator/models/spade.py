"""SPADE normalisation and residual block (Park et al., 2019), names as in the SPADE code.

SPADE: parameter-free normalisation, then a spatially varying affine map predicted from a
conditioning image: ``norm(x) * (1 + gamma(c)) + beta(c)``.

The defaults are this project's (instance norm, bilinear resizing of the conditioning). The
published ClimateGAN networks use ``interpolation="nearest"`` everywhere and, in the masker,
``norm="batch"`` (a BatchNorm without affine parameters, running statistics at inference).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from generator.models.common import conv2d

SPADE_NORMS = ("instance", "batch")
SPADE_INTERPOLATIONS = ("bilinear", "nearest")


def _param_free_norm(kind: str, num_features: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(num_features, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(num_features, affine=False)
    raise ValueError(f"SPADE norm must be one of {SPADE_NORMS}, got {kind!r}")


class SPADE(nn.Module):
    def __init__(
        self,
        num_features: int,
        cond_channels: int,
        hidden: int = 128,
        norm: str = "instance",
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        if interpolation not in SPADE_INTERPOLATIONS:
            raise ValueError(f"SPADE interpolation must be one of {SPADE_INTERPOLATIONS}")
        self.interpolation = interpolation
        self.param_free_norm = _param_free_norm(norm, num_features)
        self.mlp_shared = nn.Sequential(conv2d(cond_channels, hidden, 3), nn.ReLU())
        self.mlp_gamma = conv2d(hidden, num_features, 3)
        self.mlp_beta = conv2d(hidden, num_features, 3)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        if cond.shape[-2:] != x.shape[-2:]:
            if self.interpolation == "nearest":
                # Legacy "nearest" (not "nearest-exact"): what the published models used.
                cond = F.interpolate(cond, size=x.shape[-2:], mode="nearest")
            else:
                cond = F.interpolate(cond, size=x.shape[-2:], mode="bilinear", align_corners=False)
        actv = self.mlp_shared(cond)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Two SPADE -> LeakyReLU -> 3x3 conv stages plus a (learned, if widths differ) shortcut.

    Spectral norm (optional) applies to the block's convolutions, not to SPADE's own.
    ``last_activation``: a LeakyReLU after the sum (the published masker's blocks have it).
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        cond_channels: int,
        hidden: int = 128,
        use_spectral_norm: bool = True,
        *,
        norm: str = "instance",
        interpolation: str = "bilinear",
        last_activation: bool = False,
    ) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.last_activation = last_activation
        self.conv_0 = conv2d(fin, fmiddle, 3, use_spectral_norm=use_spectral_norm)
        self.conv_1 = conv2d(fmiddle, fout, 3, use_spectral_norm=use_spectral_norm)
        spade = {"hidden": hidden, "norm": norm, "interpolation": interpolation}
        self.norm_0 = SPADE(fin, cond_channels, **spade)
        self.norm_1 = SPADE(fmiddle, cond_channels, **spade)
        if self.learned_shortcut:
            self.conv_s = conv2d(fin, fout, 1, bias=False, use_spectral_norm=use_spectral_norm)
            self.norm_s = SPADE(fin, cond_channels, **spade)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        out = shortcut + dx
        return F.leaky_relu(out, 0.2) if self.last_activation else out
