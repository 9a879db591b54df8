"""The reference SGD (torch's rule) against ``torch.optim.SGD`` (``foreach=False``), step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradfast.reference.optim import SGD  # noqa: E402
from torch_peer import run_beside_torch  # noqa: E402

# (gradfast's keyword arguments, torch's)
SETTINGS = [
    ({"learning_rate": 0.1}, {"lr": 0.1}),
    ({"learning_rate": 0.1, "weight_decay": 0.1, "maximize": True}, {"lr": 0.1, "weight_decay": 0.1, "maximize": True}),
    ({"learning_rate": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9}),
    ({"learning_rate": 0.05, "momentum": 0.9, "dampening": 0.3}, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (
        {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
    ),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("ours", "theirs"), SETTINGS)
def test_sgd_is_torch_step_for_step(ours, theirs, dtype):
    run_beside_torch(SGD(**ours), lambda ps: torch.optim.SGD(ps, foreach=False, **theirs), dtype)


def test_the_first_step_takes_the_gradient_undampened():
    # b1 = g = 2 (no dampening on the first step), p1 = 1 - 0.1 * 2; b2 = 0.5 * 2 + 0.5 * 2 = 2
    opt = SGD(0.1, momentum=0.5, dampening=0.5)
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([2.0])})
    assert opt.state["w"]["momentum_buffer"][0] == 2.0 and p["w"][0] == 0.8
    opt.update(p, {"w": np.array([2.0])})
    assert opt.state["w"]["momentum_buffer"][0] == 2.0 and p["w"][0] == pytest.approx(0.6, abs=1e-15)


def test_no_momentum_keeps_no_buffer():
    opt = SGD(0.1)
    assert opt.slots == ()
    with pytest.raises(ValueError, match="nesterov"):
        SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True)
