"""Multiply-add and parameter counts of a model at a given input size.

Uses ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 FLOPs per multiply-add of
convolutions and matrix products; normalisations and activations are not counted). With
``on_meta=True`` the count runs on a meta-device copy: no memory, no compute, any size.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class FlopReport:
    flops: int
    parameters: int

    @property
    def multiply_adds(self) -> int:
        return self.flops // 2

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        return self.multiply_adds / 1e9


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    model: nn.Module,
    input_shapes: Sequence[Sequence[int]],
    *,
    on_meta: bool = True,
    dtype: torch.dtype = torch.float32,
) -> FlopReport:
    """Forward FLOPs of ``model(*inputs)`` for random inputs of ``input_shapes``, under no_grad.

    Example: ``count_flops(masker, [(1, 3, 640, 640)]).gmacs``;
    for the painter ``count_flops(painter, [(1, 3, 640, 640), (1, 1, 640, 640)])``.
    """
    parameters = count_parameters(model)
    if on_meta:
        model = copy.deepcopy(model).to("meta")
        device = torch.device("meta")
    else:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs = [torch.rand(*shape, device=device, dtype=dtype) for shape in input_shapes]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return FlopReport(flops=int(counter.get_total_flops()), parameters=parameters)
