"""Segmentation head: per-pixel logits over the 11 classes (sky = 9)."""

from __future__ import annotations

from generator.config import DecoderConfig
from generator.models.encoder import DeepLabV3PlusDecoder


class SegmentationDecoder(DeepLabV3PlusDecoder):
    def __init__(
        self, in_channels: int, low_in_channels: int, num_classes: int, cfg: DecoderConfig
    ) -> None:
        super().__init__(
            in_channels, low_in_channels, cfg.low_level_channels, cfg.channels, num_classes
        )
