"""Networks of the flood generator and their factories."""

from __future__ import annotations

from torch import nn

from generator.config import (
    ClimateGANMaskerConfig,
    ClimateGANPainterConfig,
    MaskerConfig,
    PainterConfig,
)
from generator.models.climategan_masker import ClimateGANMasker
from generator.models.climategan_painter import ClimateGANPainter
from generator.models.common import fold_spectral_norm
from generator.models.discriminators import (
    MultiScaleDiscriminator,
    SelfInformationDiscriminator,
)
from generator.models.masker import Masker, MaskerOutput
from generator.models.painter import Painter, compose
from generator.models.vgg import VGG19Features


def build_masker(cfg: MaskerConfig | ClimateGANMaskerConfig | None = None) -> nn.Module:
    """The masker for ``cfg`` (defaults: ResNet-101, output stride 8); a
    :class:`ClimateGANMaskerConfig` gives the published ClimateGAN masker."""
    if isinstance(cfg, ClimateGANMaskerConfig):
        return ClimateGANMasker(cfg)
    return Masker(cfg or MaskerConfig())


def build_painter(cfg: PainterConfig | ClimateGANPainterConfig | None = None) -> nn.Module:
    """The painter for ``cfg`` (defaults: 640-channel latent, 7 upsamplings); a
    :class:`ClimateGANPainterConfig` gives the published ClimateGAN painter."""
    if isinstance(cfg, ClimateGANPainterConfig):
        return ClimateGANPainter(cfg)
    return Painter(cfg or PainterConfig())


def build_masker_discriminator(cfg: MaskerConfig | None = None) -> SelfInformationDiscriminator:
    return SelfInformationDiscriminator((cfg or MaskerConfig()).discriminator)


def build_painter_discriminator(cfg: PainterConfig | None = None) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator((cfg or PainterConfig()).discriminator)


__all__ = [
    "ClimateGANMasker",
    "ClimateGANPainter",
    "Masker",
    "MaskerOutput",
    "MultiScaleDiscriminator",
    "Painter",
    "SelfInformationDiscriminator",
    "VGG19Features",
    "build_masker",
    "build_masker_discriminator",
    "build_painter",
    "build_painter_discriminator",
    "compose",
    "fold_spectral_norm",
]
