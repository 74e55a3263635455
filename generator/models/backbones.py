"""ResNet and MobileNetV2 backbones with dilation, reaching output stride 8 (or 16).

Written here (no torchvision dependency) with torchvision's parameter names, so an ImageNet
state dict saved from torchvision loads directly from a local file (``pretrained_path``).
Each backbone returns ``(low_level, high_level)`` features: stride 4 and the output stride.
"""

from __future__ import annotations

from torch import Tensor, nn

from generator.config import BackboneConfig
from generator.models.common import load_pretrained_file


def _scaled(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count, rounding to a multiple of ``divisor`` (never below it)."""
    if width == 1.0:
        return channels
    value = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    if value < 0.9 * channels * width:  # do not round down by more than 10%
        value += divisor
    return value


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_RESNET_LAYOUTS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


class ResNetBackbone(nn.Module):
    """ResNet whose last stages trade stride for dilation (DeepLab)."""

    def __init__(self, name: str, output_stride: int = 8, width_multiplier: float = 1.0) -> None:
        super().__init__()
        block, layers = _RESNET_LAYOUTS[name]
        # Which of layer2..layer4 replace their stride-2 by dilation.
        dilate = {8: (False, True, True), 16: (False, False, True)}[output_stride]
        widths = [_scaled(64 * 2**i, width_multiplier) for i in range(4)]
        self.inplanes = widths[0]
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2, dilate[0])
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2, dilate[1])
        self.layer4 = self._make_layer(block, widths[3], layers[3], 2, dilate[2])
        self.low_level_channels = widths[0] * block.expansion
        self.out_channels = widths[3] * block.expansion
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilate: bool = False,
    ) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, previous_dilation)]
        self.inplanes = planes * block.expansion
        layers += [
            block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        high = self.layer4(self.layer3(self.layer2(low)))
        return low, high


class DeepLabResNet(nn.Module):
    """ResNet-101 of the DeepLabv3+ reference code (as in the published ClimateGAN encoder).

    Unlike :class:`ResNetBackbone` (torchvision's dilation scheme) every block of a dilated
    layer uses that layer's dilation, the first included, and layer4 is a "multi-grid" unit
    whose three blocks multiply the dilation by 1, 2 and 4. At output stride 8: strides
    ``1, 2, 1, 1`` and dilations ``1, 1, 2, 4`` (layer4: 4, 8, 16). Returns ``(low, high)``:
    layer1 (256 channels, stride 4) and layer4 (2048 channels, output stride).
    """

    def __init__(self, layers: tuple[int, ...] = (3, 4, 23, 3), output_stride: int = 8) -> None:
        super().__init__()
        schedules = {8: ((1, 2, 1, 1), (1, 1, 2, 4)), 16: ((1, 2, 2, 1), (1, 1, 1, 2))}
        if output_stride not in schedules:
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        strides, dilations = schedules[output_stride]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, [dilations[0]] * layers[0], strides[0])
        self.layer2 = self._make_layer(128, [dilations[1]] * layers[1], strides[1])
        self.layer3 = self._make_layer(256, [dilations[2]] * layers[2], strides[2])
        self.layer4 = self._make_layer(512, [g * dilations[3] for g in (1, 2, 4)], strides[3])
        self.low_level_channels = 64 * Bottleneck.expansion
        self.out_channels = 512 * Bottleneck.expansion

    def _make_layer(self, planes: int, block_dilations: list[int], stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        blocks = [Bottleneck(self.inplanes, planes, stride, downsample, block_dilations[0])]
        self.inplanes = planes * Bottleneck.expansion
        blocks += [Bottleneck(self.inplanes, planes, dilation=d) for d in block_dilations[1:]]
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        high = self.layer4(self.layer3(self.layer2(low)))
        return low, high


class ConvBNReLU(nn.Sequential):
    """Conv + BatchNorm + ReLU6 (indices 0/1/2 as torchvision's Conv2dNormActivation)."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1
    ) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, stride s) of MobileNetV2.
_MOBILENET_V2_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 features (without the final 1280-channel conv), dilated to the output stride.

    Low-level features are taken after ``features[3]`` (stride 4), high-level after
    ``features[17]``.
    """

    low_level_index = 3

    def __init__(self, output_stride: int = 8, width_multiplier: float = 1.0) -> None:
        super().__init__()
        cin = _scaled(32, width_multiplier)
        features: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        current_stride, dilation = 2, 1
        low_level_channels = 0
        for expand, channels, repeats, stride in _MOBILENET_V2_SETTING:
            cout = _scaled(channels, width_multiplier)
            for i in range(repeats):
                block_stride = stride if i == 0 else 1
                block_dilation = dilation
                if block_stride == 2 and current_stride >= output_stride:
                    # Keep the resolution: the following blocks dilate instead (this one keeps
                    # the previous dilation, as in DeepLab).
                    block_stride = 1
                    dilation *= 2
                elif block_stride == 2:
                    current_stride *= 2
                features.append(InvertedResidual(cin, cout, block_stride, expand, block_dilation))
                cin = cout
                if len(features) - 1 == self.low_level_index:
                    low_level_channels = cout
        self.features = nn.Sequential(*features)
        self.low_level_channels = low_level_channels
        self.out_channels = cin
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low = self.features[: self.low_level_index + 1](x)
        high = self.features[self.low_level_index + 1 :](low)
        return low, high


def build_backbone(cfg: BackboneConfig) -> ResNetBackbone | MobileNetV2Backbone:
    """Build the backbone; load ImageNet weights from ``cfg.pretrained_path`` if it is set."""
    backbone: ResNetBackbone | MobileNetV2Backbone
    if cfg.name == "mobilenet_v2":
        backbone = MobileNetV2Backbone(cfg.output_stride, cfg.width_multiplier)
        ignore = ("classifier.", "features.18.")
    else:
        backbone = ResNetBackbone(cfg.name, cfg.output_stride, cfg.width_multiplier)
        ignore = ("fc.",)
    if cfg.pretrained_path:
        load_pretrained_file(backbone, cfg.pretrained_path, ignore_prefixes=ignore)
    return backbone
