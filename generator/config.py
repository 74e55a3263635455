"""Configuration dataclasses for the masker, the painter, their discriminators and loss weights.

Defaults follow ``shared/spec/generator.md`` (the published ClimateGAN setup). ``tiny_*`` presets
give narrow networks for tests and CPU demos (a 128x128 training run in minutes).

Every config converts to a plain dict (``to_dict``: only str/int/float/bool/None/list/dict, so it
can be stored in a checkpoint, hashed and written as JSON) and back (``from_dict``: unknown keys
raise, missing keys take their defaults so older files keep loading).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

BACKBONES = ("resnet101", "resnet50", "resnet18", "mobilenet_v2")

# The 11 segmentation classes shared by the simulated world, the masker and the effects.
# Index 9 is sky, as in the published masker; road, sidewalk and terrain are "ground".
SEGMENTATION_CLASSES: tuple[str, ...] = (
    "water",  # 0
    "road",  # 1
    "sidewalk",  # 2
    "terrain",  # 3  lawns, grass, bare ground
    "building",  # 4
    "vegetation",  # 5  trees, bushes
    "car",  # 6
    "fence",  # 7
    "person",  # 8
    "sky",  # 9
    "other",  # 10
)
SKY_CLASS = 9
GROUND_CLASSES: tuple[int, ...] = (1, 2, 3)

ConfigT = TypeVar("ConfigT", bound="ConfigBase")


class ConfigBase:
    """Mixin giving dataclass configs a dict round trip."""

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        return _from_plain(cls, data)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown keys for {cls.__name__}: {unknown}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        nested = _dataclass_in(hint)
        if nested is not None and isinstance(value, dict):
            kwargs[name] = _from_plain(nested, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _dataclass_in(hint: Any) -> type | None:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):  # Optional[SomeConfig]
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg
    return None


@dataclass
class BackboneConfig(ConfigBase):
    """Image backbone of the shared encoder.

    ``width_multiplier`` scales every channel count (1.0 = the standard network, whose ImageNet
    weights can be loaded from ``pretrained_path``; smaller values are for tests and demos).
    ``pretrained_path`` is a local file; nothing is ever downloaded.
    """

    name: str = "resnet101"
    output_stride: int = 8
    pretrained_path: str | None = None
    width_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.name!r}")
        if self.output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {self.output_stride}")
        if self.width_multiplier <= 0:
            raise ValueError("width_multiplier must be positive")


@dataclass
class EncoderConfig(ConfigBase):
    """DeepLabv3+-style encoder: backbone + atrous spatial pyramid pooling (ASPP)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    aspp_channels: int = 256
    # Dilation rates of the three atrous ASPP branches; (12, 24, 36) is DeepLab's choice at
    # output stride 8 with 512-pixel crops. Scale them down with the input for small images.
    aspp_rates: tuple[int, ...] = (12, 24, 36)
    aspp_dropout: float = 0.1


@dataclass
class DecoderConfig(ConfigBase):
    """DeepLabv3+ decoder head (used for depth and segmentation)."""

    low_level_channels: int = 48
    channels: int = 256


@dataclass
class MaskDecoderConfig(ConfigBase):
    """SPADE mask decoder: ``len(channels) - 1`` SPADE residual blocks, each followed by a 2x
    upsampling (80² -> 640² for a 640² input at output stride 8)."""

    channels: tuple[int, ...] = (128, 64, 32, 16)
    spade_hidden: int = 128
    # The conditioning (image, normalised depth, softmaxed segmentation) is built at input/4.
    conditioning_stride: int = 4
    spectral_norm: bool = True
    # False lets the mask loss shape depth and segmentation too (as in the published model).
    detach_conditioning: bool = False


@dataclass
class MaskDiscriminatorConfig(ConfigBase):
    """Fully convolutional discriminator on self-information maps (spectral norm)."""

    in_channels: int = 1
    channels: tuple[int, ...] = (64, 128, 256, 512)
    spectral_norm: bool = True


@dataclass
class MaskerConfig(ConfigBase):
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    num_classes: int = 11
    sky_class: int = SKY_CLASS
    ground_classes: tuple[int, ...] = GROUND_CLASSES
    # Which auxiliary heads exist; the mask head always does. A missing head also removes its
    # channels from the mask decoder's conditioning.
    use_depth: bool = True
    use_segmentation: bool = True
    depth_decoder: DecoderConfig = field(default_factory=DecoderConfig)
    segmentation_decoder: DecoderConfig = field(default_factory=DecoderConfig)
    mask_decoder: MaskDecoderConfig = field(default_factory=MaskDecoderConfig)
    discriminator: MaskDiscriminatorConfig = field(default_factory=MaskDiscriminatorConfig)

    @property
    def conditioning_channels(self) -> int:
        """Channels of the mask decoder's SPADE conditioning: image 3 + depth 1 + classes."""
        return 3 + (1 if self.use_depth else 0) + (self.num_classes if self.use_segmentation else 0)


@dataclass
class PatchDiscriminatorConfig(ConfigBase):
    """Multi-scale PatchGAN (pix2pixHD / GauGAN), conditioned on the mask."""

    num_scales: int = 3
    base_channels: int = 64
    num_layers: int = 4
    max_channels: int = 512
    spectral_norm: bool = True
    instance_norm: bool = True
    condition_on_mask: bool = True


@dataclass
class PainterConfig(ConfigBase):
    """SPADE generator. The masked image is resized to ``H / 2**num_upsamplings`` (5x5 for 640)
    and projected to ``latent_channels``; ``num_full_width_blocks`` SPADE blocks keep that width,
    the remaining ``num_upsamplings - 2`` halve it; ``num_upsamplings`` 2x upsamplings in all."""

    latent_channels: int = 640
    num_upsamplings: int = 7
    spade_hidden: int = 128
    spectral_norm: bool = True
    # Condition SPADE on the mask as a fourth channel next to the masked image. The published
    # painter used the masked image alone; the mask removes the ambiguity of "black" pixels.
    condition_on_mask: bool = True
    discriminator: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig)

    def __post_init__(self) -> None:
        if self.num_upsamplings < 2:
            raise ValueError("num_upsamplings must be at least 2")
        if self.latent_channels % 2 ** (self.num_upsamplings - 2):
            raise ValueError("latent_channels must be divisible by 2**(num_upsamplings - 2)")

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (2**num_upsamplings)."""
        return 2**self.num_upsamplings

    @property
    def conditioning_channels(self) -> int:
        return 4 if self.condition_on_mask else 3


@dataclass
class LossWeights(ConfigBase):
    """Masker loss weights: ``gan + ce + 0.5 me + tv + 0.05 gi`` plus depth and segmentation."""

    gan: float = 1.0
    ce: float = 1.0
    me: float = 0.5
    tv: float = 1.0
    gi: float = 0.05
    depth: float = 1.0
    seg_ce: float = 1.0
    # ADVENT's weights for entropy minimisation / adversarial alignment of segmentation.
    seg_me: float = 0.001
    seg_gan: float = 0.001


@dataclass
class PainterLossWeights(ConfigBase):
    """Painter loss weights (GauGAN's 10 for feature matching and VGG)."""

    gan: float = 1.0
    feature_matching: float = 10.0
    vgg: float = 10.0
    reconstruction: float = 1.0
    gan_mode: str = "hinge"  # or "lsgan"

    def __post_init__(self) -> None:
        if self.gan_mode not in ("hinge", "lsgan"):
            raise ValueError(f"gan_mode must be 'hinge' or 'lsgan', got {self.gan_mode!r}")


def tiny_masker_config(backbone: str = "resnet18") -> MaskerConfig:
    """A narrow masker for tests and CPU demos at 64-128 px (well under a million parameters)."""
    width = 0.35 if backbone == "mobilenet_v2" else 0.25
    return MaskerConfig(
        encoder=EncoderConfig(
            backbone=BackboneConfig(name=backbone, output_stride=8, width_multiplier=width),
            aspp_channels=48,
            aspp_rates=(2, 4, 6),
            aspp_dropout=0.0,
        ),
        depth_decoder=DecoderConfig(low_level_channels=16, channels=32),
        segmentation_decoder=DecoderConfig(low_level_channels=16, channels=32),
        mask_decoder=MaskDecoderConfig(channels=(32, 24, 16, 16), spade_hidden=16),
        discriminator=MaskDiscriminatorConfig(channels=(16, 32, 64)),
    )


def tiny_painter_config() -> PainterConfig:
    """A narrow painter: 4 upsamplings (sides multiple of 16), 64-channel latent."""
    return PainterConfig(
        latent_channels=64,
        num_upsamplings=4,
        spade_hidden=16,
        discriminator=PatchDiscriminatorConfig(num_scales=3, base_channels=16, num_layers=3),
    )


# ----------------------------------------------------------------------------- ClimateGAN


CLIMATEGAN_ARCHITECTURE = "climategan"
CLIMATEGAN_CONV_NORMS = ("none", "batch", "instance", "spectral", "spectral_batch", "spectral_instance")


@dataclass
class ClimateGANMaskerConfig(ConfigBase):
    """The published ClimateGAN masker, layer for layer (built from a release's ``opts.yaml`` by
    :mod:`generator.climategan`): DeepLabv3+ ResNet-101 encoder at output stride 8 (multi-grid
    layer4), DADA depth decoder, DeepLabv3+ segmentation decoder, SPADE or base mask decoder.

    Inference only: the importer folds spectral norm into plain weights. ``*_target_size`` are
    the square sizes the depth and segmentation maps are brought to (the release's
    ``data.transforms[-1].new_size``), whatever the input size, as the published code does.
    ``inference_*`` are the published script's defaults (shorter side to 640, centre crop,
    float32).
    """

    architecture: str = CLIMATEGAN_ARCHITECTURE
    num_classes: int = 11
    sky_class: int = SKY_CLASS
    depth_upsample_featuremaps: bool = True
    depth_target_size: int = 160
    segmentation_target_size: int = 160
    segmentation_use_dada: bool = True  # encoder features times the depth decoder's z_depth
    mask_use_dada: bool = False
    mask_use_spade: bool = True
    # SPADE mask decoder
    mask_use_proj: bool = True
    mask_proj_dim: int = 64
    spade_latent_dim: int = 128
    spade_cond_channels: int = 15  # depth 1 + segmentation classes + image 3 (12: no image)
    spade_num_layers: int = 3
    spade_param_free_norm: str = "batch"
    spade_last_lrelu: bool = True
    # Base (non-SPADE) mask decoder
    mask_n_upsample: int = 3
    mask_n_res: int = 3
    mask_norm: str = "spectral"
    mask_activation: str = "lrelu"
    mask_pad_type: str = "reflect"
    mask_use_low_level_feats: bool = True
    inference_size: int = 640
    inference_frame: str = "crop"
    # float32 as published (the pipeline's "auto" would be bf16 autocast on CUDA, which moves
    # some mask edges); PipelineOptions(precision="bf16") trades that for speed.
    inference_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.architecture != CLIMATEGAN_ARCHITECTURE:
            raise ValueError(f"architecture must be {CLIMATEGAN_ARCHITECTURE!r}")
        if self.spade_param_free_norm not in ("batch", "instance"):
            raise ValueError("spade_param_free_norm must be 'batch' or 'instance'")
        if self.spade_cond_channels not in (self.num_classes + 1, self.num_classes + 4):
            raise ValueError(
                f"spade_cond_channels must be {self.num_classes + 1} (depth + segmentation) or "
                f"{self.num_classes + 4} (+ image), got {self.spade_cond_channels}"
            )
        if self.mask_norm not in CLIMATEGAN_CONV_NORMS:
            raise ValueError(f"mask_norm must be one of {CLIMATEGAN_CONV_NORMS}")
        if self.mask_activation not in ("relu", "lrelu", "none"):
            raise ValueError("mask_activation must be 'relu', 'lrelu' or 'none'")
        if self.mask_pad_type not in ("zero", "reflect", "replicate"):
            raise ValueError("mask_pad_type must be 'zero', 'reflect' or 'replicate'")

    @property
    def uses_z_depth(self) -> bool:
        """Whether the depth decoder has its feature-fusion conv (``dec4``)."""
        return self.mask_use_dada or self.segmentation_use_dada


@dataclass
class ClimateGANPainterConfig(ConfigBase):
    """The published ClimateGAN painter: SPADE generator without noise whose input is the
    masked image resized (nearest) to ``H / 2**num_upsamplings``, conditioned on the masked
    image only, with a last full-resolution SPADE block and a tanh output. Inference only
    (spectral norm folded)."""

    architecture: str = CLIMATEGAN_ARCHITECTURE
    latent_channels: int = 640
    num_upsamplings: int = 7
    param_free_norm: str = "instance"

    def __post_init__(self) -> None:
        if self.architecture != CLIMATEGAN_ARCHITECTURE:
            raise ValueError(f"architecture must be {CLIMATEGAN_ARCHITECTURE!r}")
        if self.num_upsamplings < 2:
            raise ValueError("num_upsamplings must be at least 2")
        if self.latent_channels % 2 ** (self.num_upsamplings - 2):
            raise ValueError("latent_channels must be divisible by 2**(num_upsamplings - 2)")
        if self.param_free_norm not in ("batch", "instance"):
            raise ValueError("param_free_norm must be 'batch' or 'instance'")

    @property
    def size_multiple(self) -> int:
        return 2**self.num_upsamplings
