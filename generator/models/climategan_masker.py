"""The published ClimateGAN masker, layer for layer (inference; spectral norm folded).

Parameter names are the release's, minus the spectral-norm wrapper (``.module.``), so an
imported state dict loads strictly. Forward order, paddings, normalisations and interpolation
modes follow the published code, because the point of this module is to reproduce its outputs:

- ``encoder``: DeepLab ResNet-101 (:class:`~generator.models.backbones.DeepLabResNet`), giving
  layer4 (``high``, stride 8) and layer1 (``low``, stride 4) features;
- ``decoders.d`` (DADA depth): 1x1 / 3x3 / 1x1 convs with BatchNorm and LeakyReLU, optionally
  a nearest 2x upsampling and a conv to one channel; ``dec4`` turns the 128-channel bottleneck
  back into 2048 channels (``z_depth``) that multiply the encoder features of the segmentation
  decoder (and of the base mask decoder, with ``mask_use_dada``). The depth map is brought to
  a fixed square size (bicubic to 384², then nearest), as the release does for any input;
- ``decoders.s`` (DeepLabv3+): ASPP with rates 6/12/18 and the reference decoder, with the
  release's quirks kept: its conv + BatchNorm units have no ReLU, and the decoder receives its
  two inputs swapped (see :class:`_SegmentationHead`);
- ``decoders.m``: the SPADE mask decoder, conditioned on min-max normalised depth, softmaxed
  segmentation and (15 channels) the image resized to the segmentation's size, or the base
  decoder (residual blocks and nearest upsamplings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import ClimateGANMaskerConfig
from generator.models.backbones import DeepLabResNet
from generator.models.masker import MaskerOutput
from generator.models.spade import SPADEResnetBlock

_PAD_MODES = {"zero": "constant", "reflect": "reflect", "replicate": "replicate"}


def upsample_nearest_2x(x: Tensor) -> Tensor:
    return F.interpolate(x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="nearest")


def _activation(name: str) -> nn.Module | None:
    return {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "none": None}[name]


class ConvBlock(nn.Module):
    """Explicit padding (zero, reflect or replicate), conv, optional norm, optional activation.

    ``norm`` may be prefixed with ``spectral_`` (or be ``"spectral"``): the weights arrive
    folded, but a spectrally normalised conv keeps its bias even before a BatchNorm, which a
    plain "batch" block drops; the parameter names depend on it.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        padding: int = 0,
        *,
        norm: str = "none",
        activation: str = "lrelu",
        pad_type: str = "zero",
        bias: bool = True,
    ) -> None:
        super().__init__()
        spectral = norm.startswith("spectral")
        base_norm = norm.removeprefix("spectral").removeprefix("_") or "none"
        self.padding = padding
        self.pad_mode = _PAD_MODES[pad_type]
        use_bias = bias if spectral else (bias and base_norm != "batch")
        self.conv = nn.Conv2d(cin, cout, kernel, bias=use_bias)
        if base_norm == "batch":
            self.norm: nn.Module | None = nn.BatchNorm2d(cout)
        elif base_norm == "instance":
            self.norm = nn.InstanceNorm2d(cout)
        elif base_norm == "none":
            self.norm = None
        else:
            raise ValueError(f"unsupported normalisation {norm!r}")
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding:
            x = F.pad(x, [self.padding] * 4, mode=self.pad_mode)
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return x if self.activation is None else self.activation(x)


class DADADepthDecoder(nn.Module):
    def __init__(self, cfg: ClimateGANMaskerConfig, in_channels: int = 2048) -> None:
        super().__init__()
        block = {"norm": "batch", "activation": "lrelu", "pad_type": "reflect", "bias": False}
        self.enc4_1 = ConvBlock(in_channels, 512, 1, **block)
        self.enc4_2 = ConvBlock(512, 512, 3, 1, **block)
        self.enc4_3 = ConvBlock(512, 128, 1, **block)
        self.dec4 = ConvBlock(128, in_channels, 1) if cfg.uses_z_depth else None
        self.upsample = None
        if cfg.depth_upsample_featuremaps:
            self.upsample = nn.Sequential(
                _NearestUp(), ConvBlock(128, 32, 3, 1, **block), nn.Conv2d(32, 1, 1)
            )
        self.target_size = cfg.depth_target_size

    def forward(self, high: Tensor) -> tuple[Tensor, Tensor | None]:
        z = self.enc4_3(self.enc4_2(self.enc4_1(high)))
        z_depth = self.dec4(z) if self.dec4 is not None else None
        if self.upsample is not None:
            z = self.upsample(z)
        depth = z.mean(dim=1, keepdim=True)
        if depth.shape[-1] != self.target_size:
            # The release resizes like its MiDaS pseudo-labels were: bicubic to 384², then
            # nearest to the training size. It compares the width only, and so do we.
            depth = F.interpolate(depth, size=(384, 384), mode="bicubic", align_corners=False)
            depth = F.interpolate(depth, size=(self.target_size,) * 2, mode="nearest")
        return depth, z_depth


class _NearestUp(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return upsample_nearest_2x(x)


class ConvBN(nn.Module):
    """Conv (with bias) + BatchNorm, no activation: the reference DeepLabv3+ unit."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class ASPP(nn.Module):
    def __init__(self, in_channels: int = 2048, channels: int = 256) -> None:
        super().__init__()
        self.conv1 = ConvBN(in_channels, channels, 1)
        self.conv2 = ConvBN(in_channels, channels, 3, 6, 6)
        self.conv3 = ConvBN(in_channels, channels, 3, 12, 12)
        self.conv4 = ConvBN(in_channels, channels, 3, 18, 18)
        # padding=1 on a 1x1 conv, as in the reference: the ASPP output gains a one-pixel
        # border (bias + BatchNorm only) that the segmentation decoder then carries along.
        self.conv_out = ConvBN(channels * 4, channels, 1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x)]
        return self.conv_out(torch.cat(branches, dim=1))


class _SegmentationHead(nn.Module):
    """The reference DeepLabv3+ decoder as the release calls it.

    The published decoder is called as ``decoder(aspp_output, low_level_features)`` while its
    signature reads ``(feat_low, feat_aspp)``: the 48-channel projection ``conv_low`` is applied
    to the ASPP output (256 channels, stride 8) and the layer1 features (also 256 channels) are
    resized (bilinear, align_corners) down to stride 8 and concatenated after it. The weights
    were trained that way, so this reproduces it; the logits come out at stride 8 plus the
    ASPP's one-pixel border.
    """

    def __init__(self, num_classes: int, aspp_channels: int = 256, low_channels: int = 256) -> None:
        super().__init__()
        self.conv_low = ConvBN(aspp_channels, 48, 1)
        self.conv_cat = nn.Sequential(
            ConvBN(48 + low_channels, 256, 3, 1), ConvBN(256, 256, 3, 1)
        )
        self.conv_out = nn.Conv2d(256, num_classes, 1, bias=False)

    def forward(self, aspp: Tensor, low: Tensor) -> Tensor:
        projected = self.conv_low(aspp)
        low = F.interpolate(low, size=aspp.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv_out(self.conv_cat(torch.cat([projected, low], dim=1)))


class DeepLabV3SegmentationDecoder(nn.Module):
    def __init__(self, cfg: ClimateGANMaskerConfig, in_channels: int = 2048) -> None:
        super().__init__()
        self.use_dada = cfg.segmentation_use_dada
        self.aspp = ASPP(in_channels)
        self.decoder = _SegmentationHead(cfg.num_classes)
        self.target_size = cfg.segmentation_target_size

    def forward(self, high: Tensor, low: Tensor, z_depth: Tensor | None) -> Tensor:
        if self.use_dada and z_depth is not None:
            high = high * z_depth
        logits = self.decoder(self.aspp(high), low)
        size = (self.target_size,) * 2
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


class MaskSpadeDecoder(nn.Module):
    def __init__(self, cfg: ClimateGANMaskerConfig, high_channels: int = 2048,
                 low_channels: int = 256) -> None:
        super().__init__()
        block = {"activation": "lrelu", "pad_type": "reflect", "norm": "spectral_batch"}
        latent = cfg.spade_latent_dim
        self.use_proj = cfg.mask_use_proj
        if self.use_proj:
            proj = cfg.mask_proj_dim
            self.low_level_conv = ConvBlock(low_channels, proj, 3, 1, **block)
            self.high_level_conv = ConvBlock(high_channels, proj, 3, 1, **block)
            self.merge_feats_conv = ConvBlock(2 * proj, latent, 3, 1, **block)
        else:
            self.low_level_conv = ConvBlock(low_channels, high_channels, 3, 1, **block)
            self.merge_feats_conv = ConvBlock(2 * high_channels, latent, 3, 1, **block)
        self.spade_blocks = nn.Sequential(*[
            SPADEResnetBlock(latent // 2**i, latent // 2 ** (i + 1), cfg.spade_cond_channels,
                             128, False, norm=cfg.spade_param_free_norm,
                             interpolation="nearest", last_activation=cfg.spade_last_lrelu)
            for i in range(cfg.spade_num_layers)
        ])
        final = latent // 2**cfg.spade_num_layers
        self.mask_conv = ConvBlock(final, 1, 3, 1, norm="spectral", activation="none",
                                   pad_type="reflect")

    def forward(self, high: Tensor, low: Tensor, cond: Tensor) -> Tensor:
        low = self.low_level_conv(low)
        low = F.interpolate(low, size=high.shape[-2:], mode="bilinear", align_corners=False)
        if self.use_proj:
            high = self.high_level_conv(high)
        y = self.merge_feats_conv(torch.cat([high, low], dim=1))
        for block in self.spade_blocks:
            y = upsample_nearest_2x(block(y, cond))
        return self.mask_conv(y)


class _ResBlock(nn.Module):
    def __init__(self, dim: int, norm: str, activation: str, pad_type: str) -> None:
        super().__init__()
        block = {"norm": norm, "pad_type": pad_type}
        self.model = nn.Sequential(
            ConvBlock(dim, dim, 3, 1, activation=activation, **block),
            ConvBlock(dim, dim, 3, 1, activation="none", **block),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.model(x)


class _ResBlocks(nn.Module):
    def __init__(self, count: int, dim: int, norm: str, activation: str, pad_type: str) -> None:
        super().__init__()
        self.model = nn.Sequential(*[_ResBlock(dim, norm, activation, pad_type) for _ in range(count)])

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MaskBaseDecoder(nn.Module):
    """The published non-SPADE mask decoder: 1x1 projection (zero padding), optional low-level
    branch, residual blocks, ``mask_n_upsample`` nearest 2x upsamplings each followed by a conv
    halving the channels, and a last 3x3 conv to one logit channel."""

    def __init__(self, cfg: ClimateGANMaskerConfig, high_channels: int = 2048,
                 low_channels: int = 256) -> None:
        super().__init__()
        norm, act, pad = cfg.mask_norm, cfg.mask_activation, cfg.mask_pad_type
        dim = cfg.mask_proj_dim
        self.use_dada = cfg.mask_use_dada
        self.proj_conv = ConvBlock(high_channels, dim, 1, norm=norm, activation=act)
        self.low_level_conv = self.merge_feats_conv = None
        if cfg.mask_use_low_level_feats:
            self.low_level_conv = ConvBlock(low_channels, dim, 3, 1, norm=norm, activation=act,
                                            pad_type=pad)
            self.merge_feats_conv = ConvBlock(2 * dim, dim, 1, norm=norm, activation=act,
                                              pad_type=pad)
        layers: list[nn.Module] = [_ResBlocks(cfg.mask_n_res, dim, norm, act, pad)]
        for _ in range(cfg.mask_n_upsample):
            layers += [_NearestUp(), ConvBlock(dim, dim // 2, 3, 1, norm=norm, activation=act,
                                               pad_type=pad)]
            dim //= 2
        layers.append(ConvBlock(dim, 1, 3, 1, activation="none", pad_type=pad))
        self.model = nn.Sequential(*layers)

    def forward(self, high: Tensor, low: Tensor, z_depth: Tensor | None) -> Tensor:
        low_feat = None
        if self.low_level_conv is not None:
            low_feat = self.low_level_conv(low)
            low_feat = F.interpolate(low_feat, size=high.shape[-2:], mode="bilinear",
                                     align_corners=False)
        if self.use_dada and z_depth is not None:
            high = high * z_depth
        z = self.proj_conv(high)
        if low_feat is not None:
            assert self.merge_feats_conv is not None
            z = self.merge_feats_conv(torch.cat([low_feat, z], dim=1))
        return self.model(z)


def minmax_per_image(t: Tensor) -> Tensor:
    """Per-image ``(t - min) / (max - min)``, without an epsilon, as the release does."""
    flat = t.reshape(t.shape[0], -1)
    t = t - flat.min(dim=1).values.reshape(-1, 1, 1, 1)
    return t / t.reshape(t.shape[0], -1).max(dim=1).values.reshape(-1, 1, 1, 1)


class ClimateGANMasker(nn.Module):
    """Input: images in [-1, 1], (N,3,H,W), sides multiples of 8 (640² as published).

    Returns a :class:`~generator.models.masker.MaskerOutput`; ``mask_logits`` are the mask
    decoder's logits (at the input's size for sides that are multiples of 8), depth and
    segmentation are resized (bilinear) from their fixed square size to the input's.
    """

    def __init__(self, cfg: ClimateGANMaskerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = DeepLabResNet()
        high, low = self.encoder.out_channels, self.encoder.low_level_channels
        mask_decoder: nn.Module = (
            MaskSpadeDecoder(cfg, high, low) if cfg.mask_use_spade else MaskBaseDecoder(cfg, high, low)
        )
        self.decoders = nn.ModuleDict({
            "d": DADADepthDecoder(cfg, high),
            "s": DeepLabV3SegmentationDecoder(cfg, high),
            "m": mask_decoder,
        })

    def conditioning(self, x: Tensor, depth: Tensor, segmentation: Tensor) -> Tensor:
        parts = [minmax_per_image(depth), torch.softmax(segmentation, dim=1)]
        if self.cfg.spade_cond_channels == self.cfg.num_classes + 4:
            parts.append(F.interpolate(x, size=segmentation.shape[-2:], mode="bilinear",
                                       align_corners=True))
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor) -> MaskerOutput:
        low, high = self.encoder(x)
        depth, z_depth = self.decoders["d"](high)
        segmentation = self.decoders["s"](high, low, z_depth)
        if self.cfg.mask_use_spade:
            logits = self.decoders["m"](high, low, self.conditioning(x, depth, segmentation))
        else:
            logits = self.decoders["m"](high, low, z_depth)
        size = x.shape[-2:]
        logits = _to_size(logits, size)
        return MaskerOutput(
            mask=torch.sigmoid(logits),
            mask_logits=logits,
            depth=_to_size(depth, size),
            segmentation=_to_size(segmentation, size),
        )


def _to_size(t: Tensor, size: torch.Size) -> Tensor:
    if t.shape[-2:] == size:
        return t
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
