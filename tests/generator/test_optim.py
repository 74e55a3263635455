"""ExtraAdam against a two-parameter example stepped by hand."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from generator.optim import ExtraAdam

LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-8


def _adam(m: float, v: float, g: float, t: int) -> tuple[float, float, float]:
    """One Adam step by hand: new moments and the displacement."""
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    delta = -LR * (m / (1 - B1**t)) / (math.sqrt(v / (1 - B2**t)) + EPS)
    return m, v, delta


def _grad(a: float, b: float) -> tuple[float, float]:
    # f(a, b) = a² + a·b + 2 b²  ->  ∂f/∂a = 2a + b, ∂f/∂b = a + 4b
    return 2 * a + b, a + 4 * b


def _loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a**2 + a * b + 2 * b**2


def test_extra_adam_matches_hand_computation() -> None:
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
    # Two param groups, the second with a different learning rate scaled below.
    opt = ExtraAdam([{"params": [a]}, {"params": [b], "lr": LR}], lr=LR, betas=(B1, B2), eps=EPS)

    # Hand: θ = (1, -2), g(θ) = (0, -7).
    theta = (1.0, -2.0)
    ga, gb = _grad(*theta)
    assert (ga, gb) == (0.0, -7.0)
    ma, va, da = _adam(0.0, 0.0, ga, 1)  # g = 0 -> no move on a
    mb, vb, db = _adam(0.0, 0.0, gb, 1)  # first Adam step: -lr·sign(g) -> +0.1
    assert da == 0.0 and db == pytest.approx(0.1)
    look_ahead = (theta[0] + da, theta[1] + db)  # (1, -1.9)

    opt.zero_grad()
    _loss(a, b).backward()
    opt.extrapolation()
    assert a.item() == pytest.approx(look_ahead[0]) and b.item() == pytest.approx(look_ahead[1])
    assert opt.has_pending_extrapolation()

    # g(θ') = (2 - 1.9, 1 - 7.6) = (0.1, -6.6); step 2 of the moments, applied to θ.
    ga2, gb2 = _grad(*look_ahead)
    ma, va, da2 = _adam(ma, va, ga2, 2)
    mb, vb, db2 = _adam(mb, vb, gb2, 2)
    expected = (theta[0] + da2, theta[1] + db2)

    opt.zero_grad()
    _loss(a, b).backward()
    opt.step()
    assert a.item() == pytest.approx(expected[0], rel=1e-12)
    assert b.item() == pytest.approx(expected[1], rel=1e-12)
    assert not opt.has_pending_extrapolation()
    # a moved from its *original* value 1.0, not from the look-ahead point
    assert a.item() == pytest.approx(1.0 - 0.1 * (0.1 * 0.1 / 0.19) / math.sqrt(0.001 * 0.01 / (1 - B2**2)), rel=1e-6)
    state = opt.state[b]
    assert state["step"] == 2
    assert state["exp_avg"].item() == pytest.approx(mb) and state["exp_avg_sq"].item() == pytest.approx(vb)


def test_step_without_extrapolation_is_plain_adam() -> None:
    torch.manual_seed(0)
    w1 = torch.randn(3, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_()
    ours = ExtraAdam([w1], lr=0.05, weight_decay=0.01)
    reference = torch.optim.Adam([w2], lr=0.05, weight_decay=0.01)
    for _ in range(3):
        for w, opt in ((w1, ours), (w2, reference)):
            opt.zero_grad()
            (w**3).sum().backward()
            opt.step()
    assert torch.allclose(w1, w2, atol=1e-6)


def test_state_dict_round_trip_between_extrapolation_and_step() -> None:
    def make() -> tuple[torch.Tensor, ExtraAdam]:
        w = torch.tensor([0.5, -1.0], requires_grad=True)
        return w, ExtraAdam([w], lr=0.01)

    w, opt = make()
    opt.zero_grad()
    (w**2).sum().backward()
    opt.extrapolation()
    # deepcopy: as if written to disk (state_dict() shares tensors with the optimizer)
    saved_state, saved_w = copy.deepcopy(opt.state_dict()), w.detach().clone()

    w2, opt2 = make()
    with torch.no_grad():
        w2.copy_(saved_w)
    opt2.load_state_dict(saved_state)
    for param, optimizer in ((w, opt), (w2, opt2)):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    assert torch.equal(w, w2)
    assert opt2.state_dict()["state"][0]["step"] == 2


def test_parameter_without_gradient_returns_to_origin() -> None:
    used = torch.tensor([1.0], requires_grad=True)
    unused = torch.tensor([2.0], requires_grad=True)
    opt = ExtraAdam([used, unused], lr=0.1)
    opt.zero_grad()
    (used * unused).sum().backward()
    opt.extrapolation()
    assert unused.item() != 2.0
    opt.zero_grad()
    (used * 3).sum().backward()  # no gradient for `unused` at the look-ahead point
    opt.step()
    assert unused.item() == 2.0


def test_invalid_hyperparameters() -> None:
    with pytest.raises(ValueError):
        ExtraAdam([torch.zeros(1, requires_grad=True)], lr=-1)
    with pytest.raises(ValueError):
        ExtraAdam([torch.zeros(1, requires_grad=True)], betas=(1.0, 0.9))
