"""The reference Rprop against torch.optim.Rprop (single-tensor path), step for step.

Rprop's arithmetic has no multiply-add to fuse, so the two agree bitwise.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import Rprop  # noqa: E402
from torch_stepper import torch_steps  # noqa: E402

SHAPES = {"w": (6, 4), "b": (4,), "s": ()}
#: (gradfast keyword arguments, torch's): every option; etaminus = 1 - 1e-9 is 1 in float32,
#: where torch then also zeroes the gradients whose step size kept its value
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.1, "etas": (0.3, 1.5)}, {"lr": 0.1, "etas": (0.3, 1.5)}),
    ({"learning_rate": 0.05, "step_sizes": (0.01, 0.2)}, {"lr": 0.05, "step_sizes": (0.01, 0.2)}),
    ({"maximize": True, "etas": (0.7, 1.1)}, {"maximize": True, "etas": (0.7, 1.1)}),
    ({"etas": (1 - 1e-9, 2.0)}, {"etas": (1 - 1e-9, 2.0)}),
]
STEPS = 10


def gradients(rng, dtype):
    """Signs that persist and flip, exact zeros and a NaN."""
    out = []
    for _ in range(STEPS):
        g = {k: np.asarray(rng.standard_normal(s) + 0.3).astype(dtype) for k, s in SHAPES.items()}
        g["w"][0, :2] = 0.0
        g["w"][1, 1] = np.nan if rng.random() < 0.3 else g["w"][1, 1]
        out.append(g)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_matches_torch_bitwise(setting, dtype):
    gf_kw, torch_kw = SETTINGS[setting]
    rng = np.random.default_rng(setting)
    p0 = {k: np.asarray(rng.standard_normal(s)).astype(dtype) for k, s in SHAPES.items()}
    grads = gradients(rng, dtype)
    want_p, want_s = torch_steps("Rprop", torch_kw, p0, grads)
    opt, params = Rprop(**gf_kw), {k: a.copy() for k, a in p0.items()}
    for g in grads:
        opt.update(params, g)
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], want_p[k], err_msg=k)
        assert set(opt.state[k]) == set(want_s[k]) == {"prev", "step_size"}
        for s in opt.slots:
            assert opt.state[k][s].dtype == dtype
            np.testing.assert_array_equal(opt.state[k][s], want_s[k][s], err_msg=f"{k} {s}")


def test_step_size_starts_at_the_first_steps_learning_rate():
    opt = Rprop(learning_rate=0.5)
    opt.learning_rate = 0.1  # before the first step: the state takes it
    p = {"w": np.zeros(2, np.float32)}
    opt.update(p, {"w": np.array([1.0, -1.0], np.float32)})
    np.testing.assert_array_equal(opt.state["w"]["step_size"], np.float32(0.1))
    np.testing.assert_array_equal(p["w"], [-np.float32(0.1), np.float32(0.1)])
    opt.learning_rate = 7.0  # later changes leave the step sizes alone, as in torch
    opt.update(p, {"w": np.array([1.0, 1.0], np.float32)})
    np.testing.assert_array_equal(opt.state["w"]["step_size"], np.float32(0.1) * np.float32([1.2, 0.5]))


def test_pairs_are_views_of_their_halves():
    opt = Rprop(etas=(0.4, 1.3), step_sizes=(0.0, 2.0))
    assert (opt.etaminus, opt.etaplus, opt.step_size_min, opt.step_size_max) == (0.4, 1.3, 0.0, 2.0)
    opt.etaplus = 1.5
    assert opt.etas == (0.4, 1.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"etas": (0.0, 1.2)}, r"etas\[0\]"),
        ({"etas": (0.5, 1.0)}, r"etas\[1\]"),
        ({"etas": (0.5,)}, "etas must be a pair"),
        ({"step_sizes": (-1.0, 1.0)}, r"step_sizes\[0\]"),
        ({"step_sizes": (1.0, float("inf"))}, r"step_sizes\[1\]"),
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(Rprop, kwargs, match)
