"""The reference Adadelta against torch.optim.Adadelta (single-tensor path), step for step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import Adadelta  # noqa: E402
from torch_stepper import (  # noqa: E402
    assert_bf16_state_is_the_float32_step_rounded,
    assert_matches_torch,
    random_run,
)

SHAPES = {"w": (6, 4), "b": (4,), "s": ()}
#: (gradfast keyword arguments, torch's): every option
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.3, "rho": 0.5, "epsilon": 1e-4}, {"lr": 0.3, "rho": 0.5, "eps": 1e-4}),
    ({"learning_rate": 0.7, "weight_decay": 0.1}, {"lr": 0.7, "weight_decay": 0.1}),
    ({"rho": 0.99, "maximize": True, "weight_decay": 0.05}, {"rho": 0.99, "maximize": True, "weight_decay": 0.05}),
    ({"rho": 0.0}, {"rho": 0.0}),
    ({"rho": 1.0}, {"rho": 1.0}),
]
STEPS = 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_matches_torch_step_for_step(setting, dtype):
    gf_kw, torch_kw = SETTINGS[setting]
    p0, grads = random_run(SHAPES, dtype, STEPS, seed=setting)
    assert_matches_torch(Adadelta(**gf_kw), "Adadelta", torch_kw, p0, grads, dtype)


def test_first_step_by_hand():
    # square_avg = 0.1 g^2 = 0.4; delta = sqrt(eps) / sqrt(0.4 + eps) * g; p -= lr * delta
    opt, p = Adadelta(learning_rate=0.5, epsilon=1e-6), {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([2.0])})
    delta = np.sqrt(1e-6) / np.sqrt(0.4 + 1e-6) * 2.0
    np.testing.assert_allclose(p["w"], [1.0 - 0.5 * delta], rtol=1e-15)
    np.testing.assert_allclose(opt.state["w"]["acc_delta"], [0.1 * delta**2], rtol=1e-15)


def test_bfloat16_state_is_the_float32_step_rounded():
    assert_bf16_state_is_the_float32_step_rounded(Adadelta, {"learning_rate": 0.5, "weight_decay": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"rho": 1.5}, "rho"),
        ({"epsilon": -1e-6}, "epsilon"),
        ({"weight_decay": float("inf")}, "weight_decay"),
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(Adadelta, kwargs, match)
