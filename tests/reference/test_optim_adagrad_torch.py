"""The reference Adagrad against ``torch.optim.Adagrad`` (``foreach=False``), step for step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import Adagrad  # noqa: E402
from torch_peer import run_beside_torch  # noqa: E402

DTYPES = [np.float32, np.float64]
# (gradfast's keyword arguments, torch's)
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.1, "lr_decay": 0.05}, {"lr": 0.1, "lr_decay": 0.05}),
    ({"weight_decay": 0.1, "epsilon": 1e-6}, {"weight_decay": 0.1, "eps": 1e-6}),
    ({"initial_accumulator_value": 0.5, "learning_rate": 0.3}, {"initial_accumulator_value": 0.5, "lr": 0.3}),
    ({"maximize": True}, {"maximize": True}),
    (
        {
            "learning_rate": 0.05,
            "lr_decay": 0.1,
            "weight_decay": 0.2,
            "maximize": True,
            "initial_accumulator_value": 0.1,
        },
        {"lr": 0.05, "lr_decay": 0.1, "weight_decay": 0.2, "initial_accumulator_value": 0.1, "maximize": True},
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("ours", "theirs"), SETTINGS)
def test_adagrad_is_torch_step_for_step(ours, theirs, dtype):
    run_beside_torch(Adagrad(**ours), lambda ps: torch.optim.Adagrad(ps, foreach=False, **theirs), dtype)


def test_adagrad_first_step_by_hand():
    # sum = 0.5 + 4 = 4.5 (initial value plus g^2), p = 1 - 0.1 * 2 / (sqrt(4.5) + 0)
    opt = Adagrad(0.1, initial_accumulator_value=0.5, epsilon=0.0)
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([2.0])})
    assert opt.state["w"]["sum"][0] == 4.5
    assert p["w"][0] == pytest.approx(1.0 - 0.2 / 4.5**0.5, rel=1e-15)


def test_lr_decay_divides_the_rate_by_one_plus_decay_times_steps_taken():
    # a zero accumulator start and unit gradients: sum = t, p moves by clr_t / sqrt(t) at step t
    opt = Adagrad(1.0, lr_decay=0.5, epsilon=0.0)
    p = {"w": np.array([0.0])}
    for t in range(1, 4):
        before = p["w"][0]
        opt.update(p, {"w": np.array([1.0])})
        assert before - p["w"][0] == pytest.approx(1.0 / (1 + (t - 1) * 0.5) / t**0.5, rel=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr_decay": -0.1}, "lr_decay"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"epsilon": float("nan")}, "epsilon"),
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(Adagrad, kwargs, match)


def test_initial_accumulator_value_is_checked_and_fixed():
    with pytest.raises(ValueError, match="initial_accumulator_value must be a finite number"):
        Adagrad(initial_accumulator_value=-1.0)
    with pytest.raises(AttributeError):
        Adagrad().initial_accumulator_value = 1.0  # type: ignore[misc]
