"""The masker: shared encoder, depth / segmentation heads and the SPADE mask decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import MaskerConfig
from generator.models.depth import DepthDecoder
from generator.models.encoder import Encoder
from generator.models.mask_decoder import MaskDecoder
from generator.models.segmentation import SegmentationDecoder


class MaskerOutput(NamedTuple):
    """All maps at the input's resolution.

    ``mask``: water probability (N,1,H,W); ``mask_logits``: its logits; ``depth``: relative
    inverse depth (N,1,H,W) or None; ``segmentation``: class logits (N,C,H,W) or None.
    """

    mask: Tensor
    mask_logits: Tensor
    depth: Tensor | None
    segmentation: Tensor | None


def minmax_normalize(depth: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-image min-max normalisation to [0, 1]."""
    low = depth.amin(dim=(1, 2, 3), keepdim=True)
    high = depth.amax(dim=(1, 2, 3), keepdim=True)
    return (depth - low) / (high - low + eps)


class Masker(nn.Module):
    """Input: images in [-1, 1], (N,3,H,W); any size, multiples of 8 avoid resampling."""

    def __init__(self, cfg: MaskerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder)
        high, low = self.encoder.out_channels, self.encoder.low_level_channels
        self.depth_decoder = DepthDecoder(high, low, cfg.depth_decoder) if cfg.use_depth else None
        self.segmentation_decoder = (
            SegmentationDecoder(high, low, cfg.num_classes, cfg.segmentation_decoder)
            if cfg.use_segmentation
            else None
        )
        self.mask_decoder = MaskDecoder(high, cfg.conditioning_channels, cfg.mask_decoder)

    def forward(self, x: Tensor) -> MaskerOutput:
        size = x.shape[-2:]
        features = self.encoder(x)
        stride = self.cfg.mask_decoder.conditioning_stride
        cond_size = (-(-size[0] // stride), -(-size[1] // stride))

        cond_parts = [_resize(x, cond_size, "area")]
        depth = segmentation = None
        if self.depth_decoder is not None:
            depth = self.depth_decoder(features)
            cond_parts.append(minmax_normalize(_resize(depth, cond_size)))
        if self.segmentation_decoder is not None:
            segmentation = self.segmentation_decoder(features)
            cond_parts.append(torch.softmax(_resize(segmentation, cond_size), dim=1))
        cond = torch.cat(cond_parts, dim=1)
        if self.cfg.mask_decoder.detach_conditioning:
            cond = cond.detach()

        mask_logits = _resize(self.mask_decoder(features.high, cond), size)
        return MaskerOutput(
            mask=torch.sigmoid(mask_logits),
            mask_logits=mask_logits,
            depth=None if depth is None else _resize(depth, size),
            segmentation=None if segmentation is None else _resize(segmentation, size),
        )


def _resize(x: Tensor, size: tuple[int, int] | torch.Size, mode: str = "bilinear") -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.interpolate(x, size=tuple(size), mode="area")
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)
