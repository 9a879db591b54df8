"""The reference Adafactor (and gradfast's) against ``torch.optim.Adafactor`` (foreach=False) step for step:
params and the factored or full second moments (float32 within a few ulps, float64 to 1e-12
relative), over matrices, batches of matrices, vectors and scalars."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import Adafactor

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]
SHAPES = {"w": (7, 5), "tall": (12, 2), "b": (5,), "s": (), "batch": (2, 3, 4), "row": (1, 6)}
SETTINGS = [
    {},
    {"learning_rate": 0.1, "weight_decay": 0.1},
    {"learning_rate": 1e-3, "beta2_decay": -0.5, "epsilon": (1e-30, 1e-3), "d": 2.0},
    {"learning_rate": 1.0, "beta2_decay": 0.0, "epsilon": (1e-6, 0.5), "maximize": True},
    {"learning_rate": 0.05, "beta2_decay": -1.0, "weight_decay": 0.5, "maximize": True},
]
STEPS = 6


def close(dtype):
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-6}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_matches_torch_step_for_step(impl, dtype, setting):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tp = {k: torch.tensor(p.copy()) for k, p in params.items()}
    opt = impl.Adafactor(**setting)
    peer = torch.optim.Adafactor(
        list(tp.values()),
        lr=opt.learning_rate,
        beta2_decay=opt.beta2_decay,
        eps=opt.epsilon,
        d=opt.d,
        weight_decay=opt.weight_decay,
        maximize=opt.maximize,
        foreach=False,
    )
    for _ in range(STEPS):
        g = {k: np.asarray(rng.standard_normal(s) * rng.uniform(0.1, 3), dtype) for k, s in SHAPES.items()}
        opt.update(params, g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])
        peer.step()
        for k, t in tp.items():
            np.testing.assert_allclose(params[k], t.numpy(), **close(dtype), err_msg=k)
            theirs = {s: a.numpy() for s, a in peer.state[t].items() if s != "step"}
            assert theirs.keys() == opt.state[k].keys()
            for s, a in theirs.items():
                assert opt.state[k][s].shape == a.shape and opt.state[k][s].dtype == dtype
                np.testing.assert_allclose(opt.state[k][s], a, **close(dtype), err_msg=f"{k} {s}")


def test_a_matrix_keeps_m_plus_n_state_values():
    opt = Adafactor()
    params = {"w": np.zeros((300, 20), np.float32), "b": np.zeros(20, np.float32)}
    opt.update(params, {k: np.ones_like(p) for k, p in params.items()})
    assert {s: a.shape for s, a in opt.state["w"].items()} == {"row_var": (300, 1), "col_var": (1, 20)}
    assert {s: a.shape for s, a in opt.state["b"].items()} == {"variance": (20,)}


def test_state_dict_round_trip_resumes_bitwise():
    rng = np.random.default_rng(3)
    gs = [{"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)} for _ in range(5)]
    a, pa = Adafactor(0.1, weight_decay=0.1), {"w": np.ones((4, 3)), "b": np.zeros(3)}
    for g in gs[:2]:
        a.update(pa, g)
    b, pb = Adafactor(), {k: v.copy() for k, v in pa.items()}
    b.load_state_dict(a.state_dict())
    assert b.epsilon == (None, 1e-3) and b.weight_decay == 0.1
    for g in gs[2:]:
        a.update(pa, g)
        b.update(pb, g)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_bad_state_dict_and_epsilon_are_refused():
    opt = Adafactor()
    good = {"step": 1, "hyperparams": {}, "state": {"w": {"row_var": np.zeros((4, 1)), "col_var": np.zeros((1, 3))}}}
    opt.load_state_dict(good)
    bad = {"step": 1, "hyperparams": {}, "state": {"w": {"row_var": np.zeros((4, 1)), "col_var": np.zeros((3, 1))}}}
    with pytest.raises(ValueError, match=r"row_var of shape \(\.\.\., m, 1\) and col_var of shape"):
        Adafactor().load_state_dict(bad)
    with pytest.raises(ValueError, match=r"Adafactor: epsilon must be a pair"):
        Adafactor(epsilon=1e-3)
    with pytest.raises(ValueError, match=r"Adafactor: epsilon\[0\] must be a finite number in \[0.0, inf\]"):
        Adafactor(epsilon=(-1.0, 1e-3))
    with pytest.raises(ValueError, match=r"Adafactor: d must be a finite number in \[1.0, inf\]"):
        Adafactor(d=0.5)
    params = {"w": np.ones((4, 3))}
    before = {s: a.copy() for s, a in opt.state["w"].items()}
    with pytest.raises(ValueError, match=r"Adafactor.update: params\['w'\] must have the shape"):
        opt.update({"w": np.ones((3, 4))}, {"w": np.ones((3, 4))})
    assert opt.step == 1 and all(np.array_equal(opt.state["w"][s], before[s]) for s in before)
    opt.update(params, {"w": np.ones((4, 3))})
    assert opt.step == 2
