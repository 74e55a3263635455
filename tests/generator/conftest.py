"""Shared fixtures for the generator tests: tiny configs and seeded models (CPU, fast)."""

from __future__ import annotations

import pytest
import torch

from generator.config import MaskerConfig, PainterConfig, tiny_masker_config, tiny_painter_config
from generator.models import Masker, Painter, build_masker, build_painter


@pytest.fixture(params=["resnet18", "mobilenet_v2"])
def tiny_masker_cfg(request: pytest.FixtureRequest) -> MaskerConfig:
    return tiny_masker_config(request.param)


@pytest.fixture
def tiny_painter_cfg() -> PainterConfig:
    return tiny_painter_config()


@pytest.fixture
def tiny_masker(tiny_masker_cfg: MaskerConfig) -> Masker:
    torch.manual_seed(0)
    return build_masker(tiny_masker_cfg)


@pytest.fixture
def tiny_painter(tiny_painter_cfg: PainterConfig) -> Painter:
    torch.manual_seed(0)
    return build_painter(tiny_painter_cfg)
