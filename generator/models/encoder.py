"""DeepLabv3+-style shared encoder: dilated backbone + atrous spatial pyramid pooling."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import EncoderConfig
from generator.models.backbones import build_backbone


class EncoderFeatures(NamedTuple):
    """``high``: ASPP output at the output stride; ``low``: backbone features at stride 4."""

    high: Tensor
    low: Tensor


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """1x1 branch, one 3x3 atrous branch per rate, an image-pooling branch, then a 1x1 projection.

    The pooling branch has no BatchNorm: its statistics would come from a single value per
    channel and image, which breaks training at batch size 1.
    """

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...], dropout: float = 0.1) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(cin, cout)] + [_conv_bn_relu(cin, cout, 3, rate) for rate in rates]
        )
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU())
        self.project = nn.Sequential(
            _conv_bn_relu(cout * (len(rates) + 2), cout), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x).expand(-1, -1, x.shape[-2], x.shape[-1])
        return self.project(torch.cat([*outputs, pooled], dim=1))


class Encoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg.backbone)
        self.aspp = ASPP(self.backbone.out_channels, cfg.aspp_channels, cfg.aspp_rates, cfg.aspp_dropout)
        self.out_channels = cfg.aspp_channels
        self.low_level_channels = self.backbone.low_level_channels
        self.output_stride = cfg.backbone.output_stride

    def forward(self, x: Tensor) -> EncoderFeatures:
        low, high = self.backbone(x)
        return EncoderFeatures(high=self.aspp(high), low=low)


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabv3+ decoder: project low-level features, concatenate with upsampled ASPP output,
    two 3x3 convs, a 1x1 classifier. Output at stride 4 (the caller resizes to the input)."""

    def __init__(
        self, in_channels: int, low_in_channels: int, low_channels: int, channels: int, out_channels: int
    ) -> None:
        super().__init__()
        self.low_project = _conv_bn_relu(low_in_channels, low_channels)
        self.fuse = nn.Sequential(
            _conv_bn_relu(in_channels + low_channels, channels, 3),
            _conv_bn_relu(channels, channels, 3),
        )
        self.classifier = nn.Conv2d(channels, out_channels, 1)

    def forward(self, features: EncoderFeatures) -> Tensor:
        low = self.low_project(features.low)
        high = F.interpolate(features.high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([high, low], dim=1)))
