"""The reference ASGD against torch.optim.ASGD (single-tensor path), step for step.

torch keeps ``eta`` and ``mu`` in its default dtype; gradfast rounds them to the arrays'
dtype, so each dtype is compared with torch's default dtype set to it.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
from gradfast.reference import ASGD  # noqa: E402
from torch_stepper import assert_close, assert_matches_torch, default_dtype, random_run  # noqa: E402

SHAPES = {"w": (6, 4), "b": (4,), "s": ()}
#: (gradfast keyword arguments, torch's): every option; small t0 so that averaging starts
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.1, "t0": 3.0}, {"lr": 0.1, "t0": 3.0}),
    (
        {"learning_rate": 0.05, "lambd": 0.1, "alpha": 0.5, "t0": 2.5, "weight_decay": 0.1},
        {"lr": 0.05, "lambd": 0.1, "alpha": 0.5, "t0": 2.5, "weight_decay": 0.1},
    ),
    ({"maximize": True, "t0": 0.0, "lambd": 0.0}, {"maximize": True, "t0": 0.0, "lambd": 0.0}),
]
STEPS = 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_matches_torch_step_for_step(setting, dtype):
    gf_kw, torch_kw = SETTINGS[setting]
    p0, grads = random_run(SHAPES, dtype, STEPS, seed=setting)
    opt = ASGD(**gf_kw)
    want_s = assert_matches_torch(opt, "ASGD", torch_kw, p0, grads, dtype)
    for k in SHAPES:
        # the scalars torch keeps per parameter are the rounded values of the ones kept here
        assert dtype(opt.eta) == want_s[k]["eta"] and dtype(opt.mu) == want_s[k]["mu"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_learning_rate_change_reaches_eta_one_step_later_as_in_torch(dtype):
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(8).astype(dtype)
    grads = [rng.standard_normal(8).astype(dtype) for _ in range(4)]
    rates = [0.1, 0.1, 0.02, 0.3]
    opt, p = ASGD(learning_rate=0.1, lambd=0.05, t0=1.0), {"w": p0.copy()}
    with default_dtype(dtype):
        tp = torch.tensor(p0)
        topt = torch.optim.ASGD([tp], lr=0.1, lambd=0.05, t0=1.0, foreach=False)
        for lr, g in zip(rates, grads):
            opt.learning_rate = lr
            topt.param_groups[0]["lr"] = lr
            opt.update(p, {"w": g})
            tp.grad = torch.tensor(g)
            topt.step()
    assert_close(p["w"], tp.detach().numpy(), dtype, ulps=8)
    assert dtype(opt.eta) == topt.state[tp]["eta"].item()


def test_state_dict_carries_eta_and_mu_and_resumes_bitwise():
    rng = np.random.default_rng(2)
    grads = [{"w": rng.standard_normal(5)} for _ in range(6)]
    a, pa = ASGD(learning_rate=0.1, t0=1.0), {"w": np.ones(5)}
    assert a.state_dict()["eta"] is None and a.state_dict()["mu"] is None
    for g in grads[:3]:
        a.update(pa, g)
    saved, pb = a.state_dict(), {"w": pa["w"].copy()}
    assert 0 < saved["mu"] < 1 and saved["eta"] < 0.1
    b = ASGD()
    b.load_state_dict(saved)
    for g in grads[3:]:
        a.update(pa, g)
        b.update(pb, g)
    np.testing.assert_array_equal(pa["w"], pb["w"])
    np.testing.assert_array_equal(a.state["w"]["ax"], b.state["w"]["ax"])
    assert (a.eta, a.mu) == (b.eta, b.mu)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"mu": 0.0}, r"d\['mu'\] must be a finite number in \(0.0, 1.0\]"),
        ({"eta": float("nan")}, r"d\['eta'\]"),
        ({"eta": None}, r"d\['eta'\] must be a real number"),
    ],
)
def test_load_refuses_bad_eta_or_mu_and_changes_nothing(change, match):
    opt, p = ASGD(), {"w": np.ones(3)}
    opt.update(p, {"w": np.ones(3)})
    before = opt.state_dict()
    with pytest.raises((TypeError, ValueError), match=match):
        opt.load_state_dict({**before, **change})
    assert (opt.eta, opt.mu) == (before["eta"], before["mu"])


def test_load_refuses_eta_without_state():
    with pytest.raises(ValueError, match=r"d\['eta'\] must be None with no state arrays"):
        ASGD().load_state_dict({"step": 0, "hyperparams": {}, "state": {}, "eta": 0.1, "mu": 1.0})
