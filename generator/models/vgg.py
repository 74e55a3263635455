"""VGG19 feature extractor for the perceptual loss.

Layers ``features.0`` .. ``features.29`` of torchvision's VGG19 (same parameter names, so a
torchvision ImageNet state dict loads from a local file). Returns relu1_1, relu2_1, relu3_1,
relu4_1 and relu5_1. Without ``weights_path`` the network is randomly initialised: the loss
still runs (tests, smoke runs) but is NOT a perceptual loss; give real weights for training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from generator.models.common import load_pretrained_file

_VGG19_LAYOUT: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
_VGG19_LAYOUT += [512, 512, 512, 512, "M", 512]  # up to conv5_1
# Indices (in ``features``) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG_LAYER_INDICES = (1, 6, 11, 20, 29)
# pix2pixHD / GauGAN weights for those layers.
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in _VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights_path:
            # Drop the deeper layers and classifier of a full VGG19 state dict.
            extra = tuple(f"features.{i}." for i in range(len(layers), 37)) + ("classifier.",)
            load_pretrained_file(self, weights_path, ignore_prefixes=extra)
        else:
            warnings.warn(
                "VGG19Features has random weights: the perceptual loss is not meaningful "
                "without ImageNet weights (pass weights_path)",
                stacklevel=2,
            )
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        # Always in eval mode: it is a fixed feature extractor.
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x`` in [-1, 1] (N,3,H,W) -> the five relu feature maps."""
        x = ((x + 1) / 2 - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG_LAYER_INDICES:
                outputs.append(x)
        return outputs
