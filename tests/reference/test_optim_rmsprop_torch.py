"""The reference RMSprop against ``torch.optim.RMSprop`` (``foreach=False``), step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import RMSprop  # noqa: E402
from torch_peer import run_beside_torch  # noqa: E402

DTYPES = [np.float32, np.float64]
# (gradfast's keyword arguments, torch's)
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.05, "alpha": 0.9, "epsilon": 1e-6}, {"lr": 0.05, "alpha": 0.9, "eps": 1e-6}),
    ({"momentum": 0.9}, {"momentum": 0.9}),
    ({"centered": True}, {"centered": True}),
    # lerp's upper branch (1 - alpha >= 0.5); without momentum, since with so short an average
    # sq - ga * ga cancels often, and the buffer's g / avg carries that, magnified, unscaled
    ({"centered": True, "alpha": 0.3}, {"centered": True, "alpha": 0.3}),
    ({"weight_decay": 0.1, "maximize": True}, {"weight_decay": 0.1, "maximize": True}),
    (
        {"learning_rate": 0.02, "weight_decay": 0.05, "momentum": 0.8, "centered": True, "maximize": True},
        {"lr": 0.02, "weight_decay": 0.05, "momentum": 0.8, "centered": True, "maximize": True},
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("ours", "theirs"), SETTINGS)
def test_rmsprop_is_torch_step_for_step(ours, theirs, dtype):
    run_beside_torch(RMSprop(**ours), lambda ps: torch.optim.RMSprop(ps, foreach=False, **theirs), dtype)


def test_rmsprop_first_step_by_hand():
    # square_avg = (1 - 0.75) * 4 = 1, so p = 1 - 0.1 * 2 / (1 + 0)
    opt = RMSprop(0.1, alpha=0.75, epsilon=0.0)
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([2.0])})
    assert opt.state["w"]["square_avg"][0] == 1.0
    assert p["w"][0] == 0.8


def test_the_slots_follow_momentum_and_centered():
    assert RMSprop().slots == ("square_avg",)
    assert RMSprop(momentum=0.5, centered=True).slots == ("square_avg", "momentum_buffer", "grad_avg")
    opt = RMSprop()
    opt.update({"w": np.ones(3)}, {"w": np.ones(3)})
    opt.centered = True
    with pytest.raises(ValueError, match=r"state\['w'\]\['grad_avg'\] must be a state array"):
        opt.update({"w": np.ones(3)}, {"w": np.ones(3)})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"epsilon": -1e-8}, "epsilon"),
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(RMSprop, kwargs, match)
