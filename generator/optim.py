"""ExtraAdam: extragradient with Adam steps (Gidel et al., ICLR 2019), used to train the masker.

One full update takes two gradients::

    opt.zero_grad(); loss_at(θ).backward();  opt.extrapolation()   # θ' = θ + Adam(g(θ)), θ kept
    opt.zero_grad(); loss_at(θ').backward(); opt.step()            # θ  = θ + Adam(g(θ'))

The two gradients may come from successive batches (the reference implementation extrapolates
on even steps and updates on odd ones) or from the same batch: ``generator.train`` does both
half-steps on one batch within each training step (``train_masker``'s ``step_fn``), so every
step is one full extragradient update.

Moment buffers: as in the reference implementation, *both* calls update Adam's first and second
moments and the step counter (bias correction uses that counter), so one extrapolation + update
pair advances ``state["step"]`` by 2. Each Adam step is PyTorch's:
``m = β1 m + (1-β1) g``, ``v = β2 v + (1-β2) g²``,
``Δ = -lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)`` with L2 ``weight_decay`` added to ``g``.

The saved θ lives in the optimizer state (key ``"extrapolation_origin"``), so a state dict taken
between the two calls round-trips. ``step()`` without a preceding ``extrapolation()`` is a
plain Adam step. Parameters without gradient are left alone by ``extrapolation()``; ``step()``
always returns extrapolated parameters to θ, then updates those that have a gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

ORIGIN_KEY = "extrapolation_origin"


class ExtraAdam(Optimizer):
    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid betas {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError("eps and weight_decay must be non-negative")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def _adam_update(self, param: Tensor, group: dict[str, Any]) -> Tensor:
        """Advance the moments with ``param.grad`` and return the Adam displacement."""
        grad = param.grad
        if grad.is_sparse:
            raise RuntimeError("ExtraAdam does not support sparse gradients")
        state = self.state[param]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = state["step"]
        if group["weight_decay"]:
            grad = grad.add(param, alpha=group["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        denom = (exp_avg_sq / bias_correction2).sqrt_().add_(group["eps"])
        return exp_avg.div(denom).mul_(-group["lr"] / bias_correction1)

    @torch.no_grad()
    def extrapolation(self) -> None:
        """Save θ and move every parameter with a gradient to the look-ahead point θ'."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = self._adam_update(param, group)
                state = self.state[param]
                if ORIGIN_KEY not in state:  # a second extrapolation keeps the first origin
                    state[ORIGIN_KEY] = param.detach().clone()
                param.add_(update)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Restore θ and apply the Adam update computed from the current (look-ahead) gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state[param]
                update = self._adam_update(param, group) if param.grad is not None else None
                origin = state.pop(ORIGIN_KEY, None)
                if origin is not None:
                    param.copy_(origin)
                if update is not None:
                    param.add_(update)
        return loss

    def has_pending_extrapolation(self) -> bool:
        """True between ``extrapolation()`` and ``step()``."""
        return any(ORIGIN_KEY in s for s in self.state.values())
