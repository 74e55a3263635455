"""Depth head: one channel of relative inverse depth (larger = closer), no activation."""

from __future__ import annotations

from generator.config import DecoderConfig
from generator.models.encoder import DeepLabV3PlusDecoder


class DepthDecoder(DeepLabV3PlusDecoder):
    def __init__(self, in_channels: int, low_in_channels: int, cfg: DecoderConfig) -> None:
        super().__init__(in_channels, low_in_channels, cfg.low_level_channels, cfg.channels, 1)
