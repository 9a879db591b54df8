"""The reference Lion against its peers: ``lion_pytorch.Lion`` step for step (float32 within a
few ulps, float64 to 1e-12 relative) and ``optax.lion`` (the same rule, rounded otherwise)."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import Lion

torch = pytest.importorskip("torch")
lion_pytorch = pytest.importorskip("lion_pytorch")

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
SHAPES = {"w": (7, 5), "b": (5,), "s": (), "t": (2, 3, 4)}
SETTINGS = [
    {},
    {"learning_rate": 1e-2, "weight_decay": 0.1},
    {"learning_rate": 3e-3, "beta1": 0.5, "beta2": 0.9, "weight_decay": 1.0},
    {"learning_rate": 1e-3, "beta1": 0.0, "beta2": 1.0},
    {"learning_rate": 1e-3, "beta1": 1.0, "beta2": 0.0},
]
STEPS = 6


def close(dtype):
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 4e-7, "atol": 1e-7}


def grads(rng, dtype):
    return [{k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()} for _ in range(STEPS)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_matches_lion_pytorch_step_for_step(dtype, setting):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tp = {k: torch.tensor(p.copy()) for k, p in params.items()}
    opt = Lion(**setting)
    peer = lion_pytorch.Lion(
        list(tp.values()),
        lr=opt.learning_rate,
        betas=(opt.beta1, opt.beta2),
        weight_decay=opt.weight_decay,
    )
    for g in grads(rng, dtype):
        opt.update(params, g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])
        peer.step()
        for k, t in tp.items():
            np.testing.assert_allclose(params[k], t.numpy(), **close(dtype))
            np.testing.assert_allclose(opt.state[k]["exp_avg"], peer.state[t]["exp_avg"].numpy(), **close(dtype))
            assert params[k].dtype == dtype and opt.state[k]["exp_avg"].dtype == dtype
    assert opt.step == STEPS


def test_matches_optax_lion():
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(1)
    p = rng.standard_normal((6, 4)).astype(np.float32)
    opt = Lion(1e-2, 0.8, 0.95, weight_decay=0.3)
    tx = optax.lion(1e-2, b1=0.8, b2=0.95, weight_decay=0.3)
    jp = jnp.asarray(p)
    st = tx.init(jp)
    params = {"w": p.copy()}
    for _ in range(STEPS):
        g = rng.standard_normal(p.shape).astype(np.float32)
        opt.update(params, {"w": g})
        upd, st = tx.update(jnp.asarray(g), st, jp)
        jp = optax.apply_updates(jp, upd)
        np.testing.assert_allclose(params["w"], np.asarray(jp), rtol=1e-6, atol=1e-7)


def test_nan_gradient_moves_no_weight_but_poisons_the_moment_as_torch():
    p = {"w": np.array([1.0, 2.0])}
    opt = Lion(0.1)
    opt.update(p, {"w": np.array([np.nan, 1.0])})
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=False)
    peer = lion_pytorch.Lion([t], lr=0.1)
    t.grad = torch.tensor([np.nan, 1.0], dtype=torch.float64)
    peer.step()
    np.testing.assert_array_equal(p["w"], t.numpy())
    assert p["w"][0] == 1.0 and np.isnan(opt.state["w"]["exp_avg"][0])


def test_bfloat16_state_is_the_float32_step_rounded():
    import ml_dtypes

    rng = np.random.default_rng(2)
    p32 = {"w": rng.standard_normal((9, 3)).astype(np.float32)}
    p16 = {"w": p32["w"].copy()}
    a, b = Lion(1e-2, weight_decay=0.1), Lion(1e-2, weight_decay=0.1, state_dtype="bfloat16")
    g = {"w": rng.standard_normal((9, 3)).astype(np.float32)}
    a.update(p32, g)
    b.update(p16, g)
    assert b.state["w"]["exp_avg"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(p16["w"], p32["w"])  # the first step reads zero state either way
    np.testing.assert_array_equal(b.state["w"]["exp_avg"], a.state["w"]["exp_avg"].astype(ml_dtypes.bfloat16))
