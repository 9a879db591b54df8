"""The reference Adamax against ``torch.optim.Adamax`` (``foreach=False``), step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import Adamax  # noqa: E402
from torch_peer import run_beside_torch  # noqa: E402

DTYPES = [np.float32, np.float64]
# (gradfast's keyword arguments, torch's)
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.9}, {"lr": 0.01, "betas": (0.8, 0.9)}),
    # lerp's upper branch (1 - beta1 >= 0.5), and an epsilon that wins the maximum sometimes
    ({"beta1": 0.3, "epsilon": 0.5}, {"betas": (0.3, 0.999), "eps": 0.5}),
    ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ({"maximize": True, "weight_decay": 0.05}, {"maximize": True, "weight_decay": 0.05}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("ours", "theirs"), SETTINGS)
def test_adamax_is_torch_step_for_step(ours, theirs, dtype):
    run_beside_torch(Adamax(**ours), lambda ps: torch.optim.Adamax(ps, foreach=False, **theirs), dtype)


def test_adamax_first_step_by_hand():
    # m = 0.1 * g, u = |g| + eps, clr = lr / 0.1: p moves by lr * g / (|g| + eps)
    opt = Adamax(0.01, epsilon=0.5)
    p = {"w": np.array([1.0, 1.0])}
    opt.update(p, {"w": np.array([2.0, -0.5])})
    np.testing.assert_array_equal(opt.state["w"]["exp_inf"], [2.5, 1.0])
    np.testing.assert_allclose(p["w"], [1.0 - 0.01 * 2.0 / 2.5, 1.0 + 0.01 * 0.5], rtol=1e-15)


def test_exp_inf_keeps_the_decayed_maximum_and_propagates_nan():
    opt = Adamax(beta2=0.5, epsilon=0.0)
    p = {"w": np.zeros(3)}
    opt.update(p, {"w": np.array([4.0, 1.0, 1.0])})
    opt.update(p, {"w": np.array([1.0, 3.0, np.nan])})
    u = opt.state["w"]["exp_inf"]
    assert u[0] == 2.0 and u[1] == 3.0 and np.isnan(u[2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"beta1": 1.0}, "beta1"), ({"beta2": -0.1}, "beta2"), ({"weight_decay": -1.0}, "weight_decay")],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(Adamax, kwargs, match)
