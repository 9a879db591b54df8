"""The reference RAdam against torch.optim.RAdam (single-tensor path), step for step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import RAdam  # noqa: E402
from gradfast.reference.optim.radam import radam_scalars  # noqa: E402
from torch_stepper import (  # noqa: E402
    assert_bf16_state_is_the_float32_step_rounded,
    assert_matches_torch,
    random_run,
)

SHAPES = {"w": (7, 5), "b": (5,), "s": ()}
#: (gradfast keyword arguments, torch's): every option, and beta2 = 0.9 so that the switch to
#: rectified steps (rho_t > 5, from step 6) happens within the run
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 1e-2, "beta2": 0.9}, {"lr": 1e-2, "betas": (0.9, 0.9)}),
    (
        {"learning_rate": 1e-2, "beta1": 0.3, "beta2": 0.9, "epsilon": 1e-3, "weight_decay": 0.1},
        {"lr": 1e-2, "betas": (0.3, 0.9), "eps": 1e-3, "weight_decay": 0.1},
    ),
    (
        {"learning_rate": 3e-2, "beta2": 0.95, "weight_decay": 0.2, "decoupled": True},
        {"lr": 3e-2, "betas": (0.9, 0.95), "weight_decay": 0.2, "decoupled_weight_decay": True},
    ),
    (
        {"learning_rate": 1e-2, "beta1": 0.0, "beta2": 0.9, "maximize": True, "weight_decay": 0.1},
        {"lr": 1e-2, "betas": (0.0, 0.9), "maximize": True, "weight_decay": 0.1},
    ),
]
STEPS = 12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_matches_torch_step_for_step(setting, dtype):
    gf_kw, torch_kw = SETTINGS[setting]
    p0, grads = random_run(SHAPES, dtype, STEPS, seed=setting)
    assert_matches_torch(RAdam(**gf_kw), "RAdam", torch_kw, p0, grads, dtype)


def test_switches_to_rectified_steps_where_torch_does():
    # rho_inf = 2 / (1 - beta2) - 1; the SMA length passes 5 at step 6 for beta2 = 0.9
    assert [radam_scalars(0.9, t)[0] > 5 for t in range(1, 8)] == [False] * 5 + [True] * 2
    assert all(radam_scalars(0.5, t)[0] <= 5 for t in range(1, 100))  # rho_inf = 3: never


def test_unrectified_steps_are_momentum_sgd_with_bias_correction():
    opt, p = RAdam(learning_rate=0.1, beta1=0.5, beta2=0.9), {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([2.0])})
    np.testing.assert_allclose(p["w"], [1.0 - 0.1 * 2.0], rtol=1e-15)  # m_hat = g at t = 1
    opt.update(p, {"w": np.array([4.0])})  # m = 2.5, bc1 = 0.75
    np.testing.assert_allclose(p["w"], [0.8 - 0.1 * 2.5 / 0.75], rtol=1e-15)


def test_bfloat16_state_is_the_float32_step_rounded():
    assert_bf16_state_is_the_float32_step_rounded(RAdam, {"beta2": 0.9, "weight_decay": 0.1}, steps=8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"beta1": 1.0}, "beta1"),
        ({"beta2": -0.1}, "beta2"),
        ({"epsilon": -1e-8}, "epsilon"),
        ({"weight_decay": float("nan")}, "weight_decay"),
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(RAdam, kwargs, match)
