"""Small building blocks shared by the networks: spectral-norm wrappers, checked weight loading."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class StateDictMismatchError(RuntimeError):
    """Raised when weights do not fit a model; lists every offending key."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
        context: str = "",
    ) -> None:
        self.missing = missing
        self.unexpected = unexpected
        self.shape_mismatches = shape_mismatches
        lines = [f"weights do not match the model{f' ({context})' if context else ''}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {_preview(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
        if shape_mismatches:
            shown = [f"{k}: file {tuple(a)} vs model {tuple(b)}" for k, a, b in shape_mismatches]
            lines.append(f"  shape mismatches ({len(shape_mismatches)}): {_preview(shown)}")
        super().__init__("\n".join(lines))


def _preview(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module.weight`` with spectral normalisation (one power iteration per training step)."""
    return spectral_norm(module) if enabled else module


def conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
    bias: bool = True,
    use_spectral_norm: bool = False,
) -> nn.Module:
    """A 2-d convolution with "same" padding by default and optional spectral norm."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
    )
    return maybe_spectral_norm(conv, use_spectral_norm)


def fold_spectral_norm(model: nn.Module) -> int:
    """Replace every spectral-norm parametrization by the plain weight ``W / sigma`` it computes.

    Useful for inference (no power iteration, plain ``weight`` keys). The model should be in eval
    mode first so that sigma is taken from the stored power-iteration vectors. Returns the number
    of folded weights.
    """
    folded = 0
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            with torch.no_grad():
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            folded += 1
    return folded


def check_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], context: str = ""
) -> None:
    """Raise :class:`StateDictMismatchError` unless ``state_dict`` fits ``model`` exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shape_mismatches = [
        (key, tuple(state_dict[key].shape), tuple(expected[key].shape))
        for key in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    if missing or unexpected or shape_mismatches:
        raise StateDictMismatchError(missing, unexpected, shape_mismatches, context)


def load_state_dict_checked(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], context: str = ""
) -> None:
    """``load_state_dict`` that first validates keys and shapes with a readable error."""
    check_state_dict(model, state_dict, context)
    model.load_state_dict(state_dict, strict=True)


def load_pretrained_file(
    model: nn.Module, path: str | Path, ignore_prefixes: Iterable[str] = ()
) -> list[str]:
    """Load ImageNet-style weights from a local file into ``model``.

    Accepts a bare state dict or one wrapped under ``state_dict``/``model``; strips a
    ``module.`` prefix (DataParallel). Keys starting with one of ``ignore_prefixes`` (classifier
    heads, layers this model drops) are skipped. Returns the skipped keys. Never downloads.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    prefixes = tuple(ignore_prefixes)
    cleaned: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, value in loaded.items():
        key = key.removeprefix("module.")
        if prefixes and key.startswith(prefixes):
            skipped.append(key)
        else:
            cleaned[key] = value
    load_state_dict_checked(model, cleaned, context=str(path))
    return skipped
