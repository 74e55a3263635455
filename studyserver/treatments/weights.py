"""Which generator weights make the images: the tiny reference (test) weights, or trained ones."""

from __future__ import annotations

from django.conf import settings

#: Backends of the generator's reference (test) weights, see generator/reference.py.
TEST_WEIGHT_BACKENDS: tuple[str, ...] = ("reference-sim-tiny", "reference-nonlearned")


def generator_uses_test_weights() -> bool:
    """No trained checkpoints configured: the generator falls back to the tiny reference weights."""
    return not (settings.GENERATOR_MASKER_CHECKPOINT and settings.GENERATOR_PAINTER_CHECKPOINT)
