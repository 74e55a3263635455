"""Named training presets and the config-file format of ``python -m generator train``.

A config file (JSON, or TOML with the same structure) looks like::

    {"preset": "tiny",                      # optional: start from a preset (default "default")
     "model": {...},                        # overrides of MaskerConfig / PainterConfig fields
     "loss": {...},                         # overrides of LossWeights / PainterLossWeights
     "train": {...}}                        # overrides of TrainSettings

Nested dicts are merged key by key onto the preset, so a file only states what it changes.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import (
    ConfigBase,
    LossWeights,
    MaskerConfig,
    PainterConfig,
    PainterLossWeights,
    tiny_masker_config,
    tiny_painter_config,
)


@dataclass
class TrainSettings(ConfigBase):
    """Everything about a training run that is not the network or the loss weights."""

    batch_size: int = 8
    lr: float = 5e-5  # masker / painter generator (spec: 1e-5..5e-5 masker, 1e-4..2e-5 D)
    lr_discriminator: float = 1e-4
    betas: tuple[float, ...] = (0.5, 0.999)
    checkpoint_every: int = 500
    val_every: int = 500
    log_every: int = 10
    val_scenes: int = 16
    sim_scenes: int = 5000  # distinct simulated training scenes (rendered once, then cached)
    water_height: float = 0.5  # masker target level (m); the painter draws from water_range
    water_range: tuple[float, ...] = (0.15, 1.2)
    adaptation: bool = True  # masker: MinEnt/TV/GI/WGAN on the unlabelled "real" domain
    adaptation_start: int = 0  # step from which adaptation losses are switched on
    use_discriminator: bool = True  # painter GAN + feature matching
    vgg_weights: str | None = None  # local VGG19 weights file for the perceptual loss
    amp: bool = True  # bf16 autocast on GPU (CPU always runs fp32)
    seed: int = 0
    shadows: bool = True


PRESETS = ("default", "tiny")


def preset(name: str, kind: str) -> dict[str, Any]:
    """``{"model": ..., "loss": ..., "train": ...}`` plain dicts of a named preset."""
    if kind not in ("masker", "painter"):
        raise ValueError("kind must be 'masker' or 'painter'")
    if name == "default":
        model = MaskerConfig() if kind == "masker" else PainterConfig()
        loss = LossWeights() if kind == "masker" else PainterLossWeights()
        train = TrainSettings()
    elif name == "tiny":
        # Narrow networks and a high learning rate so a 128x128 CPU run converges in minutes.
        model = tiny_masker_config() if kind == "masker" else tiny_painter_config()
        if kind == "masker":
            loss = LossWeights()
            train = TrainSettings(batch_size=8, lr=2e-3, lr_discriminator=1e-4,
                                  checkpoint_every=100, val_every=100, sim_scenes=600,
                                  val_scenes=16, adaptation_start=100)
        else:
            # feature matching at GauGAN's weight swamps the reconstruction in a short run
            loss = PainterLossWeights(feature_matching=1.0, vgg=1.0, reconstruction=10.0)
            train = TrainSettings(batch_size=8, lr=2e-3, lr_discriminator=2e-4,
                                  checkpoint_every=100, val_every=100, sim_scenes=600,
                                  val_scenes=16)
    else:
        raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")
    return {"model": model.to_dict(), "loss": loss.to_dict(), "train": train.to_dict()}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The raw mapping of a JSON or TOML config file ({} for None)."""
    if path is None:
        return {}
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        return tomllib.loads(text)
    return json.loads(text)


def resolve(kind: str, file_data: dict[str, Any]):
    """(model config, loss weights, TrainSettings) from a config mapping."""
    unknown = set(file_data) - {"preset", "model", "loss", "train"}
    if unknown:
        raise ValueError(f"unknown top-level config keys: {sorted(unknown)}")
    base = preset(file_data.get("preset", "default"), kind)
    merged = _merge(base, {k: v for k, v in file_data.items() if k != "preset"})
    model_cls = MaskerConfig if kind == "masker" else PainterConfig
    loss_cls = LossWeights if kind == "masker" else PainterLossWeights
    return (model_cls.from_dict(merged["model"]), loss_cls.from_dict(merged["loss"]),
            TrainSettings.from_dict(merged["train"]))
