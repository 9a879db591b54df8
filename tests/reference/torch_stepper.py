"""Runs a torch.optim optimizer (single-tensor path) on NumPy arrays, for the reference tests.

torch's vectorized CPU kernels fuse some multiply-adds (``lerp``, ``addcmul``, ``add`` with
``alpha``) where the reference rounds twice, so the two agree to a few units in the last place
in float32 and to about 1e-13 relative in float64, not bitwise.
"""

from __future__ import annotations

import contextlib

import ml_dtypes
import numpy as np
import torch


@contextlib.contextmanager
def default_dtype(dtype):
    """torch's default dtype set to ``dtype`` (where torch keeps per-parameter scalars)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def torch_steps(name: str, kwargs: dict, params: dict, grads: list[dict]):
    """``params`` after ``torch.optim.<name>(**kwargs, foreach=False)`` took one step per
    entry of ``grads``, and its state as NumPy: ``({key: array}, {key: {slot: array}})``."""
    with default_dtype(next(iter(params.values())).dtype):
        tp = {k: torch.tensor(a) for k, a in params.items()}
        opt = getattr(torch.optim, name)(list(tp.values()), foreach=False, **kwargs)
        for g in grads:
            for k, t in tp.items():
                t.grad = torch.tensor(g[k])
            opt.step()
        state = {k: {s: v.numpy().copy() for s, v in opt.state[t].items() if s != "step"} for k, t in tp.items()}
        return {k: t.detach().numpy().copy() for k, t in tp.items()}, state


def assert_close(got, want, dtype, *, ulps=4, err_msg=""):
    """float32: within ``ulps`` units in the last place of each value or of the array's largest
    magnitude (where the two differ by a fused rounding before a cancellation); float64: 1e-12
    relative, to the value or to the array's largest magnitude. NaN where torch has NaN."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, err_msg
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=err_msg)
    finite = ~np.isnan(want)
    g, w = got[finite].astype(np.float64), want[finite].astype(np.float64)
    if w.size == 0:
        return
    top = np.abs(w).max()
    if np.dtype(dtype) == np.float32:
        scale = np.spacing(np.maximum(np.abs(g), np.abs(w)).astype(np.float32)).astype(np.float64)
        bound = ulps * (scale + float(np.spacing(np.float32(top))))
    else:
        bound = 1e-12 * (np.maximum(np.abs(g), np.abs(w)) + top) + 1e-300
    np.testing.assert_array_less(np.abs(g - w), bound, err_msg=err_msg)


def random_run(shapes: dict, dtype, steps: int, seed: int):
    """Start values and ``steps`` gradient dicts of ``shapes``, standard normal."""
    rng = np.random.default_rng(seed)

    def draw():
        return {k: np.asarray(rng.standard_normal(s)).astype(dtype) for k, s in shapes.items()}

    return draw(), [draw() for _ in range(steps)]


def assert_matches_torch(opt, name: str, torch_kw: dict, p0: dict, grads: list[dict], dtype, *, ulps=8):
    """Run the reference ``opt`` and ``torch.optim.<name>`` over ``grads`` from ``p0``, and
    compare the params and every state slot of ``opt`` (torch has the same slots); returns
    torch's state for further checks."""
    want_p, want_s = torch_steps(name, torch_kw, p0, grads)
    params = {k: a.copy() for k, a in p0.items()}
    for g in grads:
        opt.update(params, g)
    assert opt.step == len(grads)
    for k in p0:
        assert_close(params[k], want_p[k], dtype, ulps=ulps, err_msg=k)
        assert set(opt.state[k]) <= set(want_s[k])
        for s in opt.slots:
            assert_close(opt.state[k][s], want_s[k][s], dtype, ulps=ulps, err_msg=f"{k} {s}")
    return want_s


def assert_bf16_state_is_the_float32_step_rounded(cls, kwargs: dict, steps: int = 5, seed: int = 0):
    """``cls(**kwargs, state_dtype='bfloat16')`` on float32 params takes the float32 step from
    its bfloat16 state, stores the state rounded to nearest even and moves the params by the
    unrounded step: each step equals that of the float32 optimizer continued from the rounded
    state."""
    bf16 = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(40).astype(np.float32)
    low, full = cls(**kwargs, state_dtype="bfloat16"), cls(**kwargs)
    pl, pf = {"w": p0.copy()}, {"w": p0.copy()}
    for _ in range(steps):
        g = rng.standard_normal(40).astype(np.float32)
        low.update(pl, {"w": g})
        full.update(pf, {"w": g})
        np.testing.assert_array_equal(pl["w"], pf["w"])
        for s in low.slots:
            assert low.state["w"][s].dtype == bf16
            np.testing.assert_array_equal(low.state["w"][s], full.state["w"][s].astype(bf16))
            full.state["w"][s][...] = low.state["w"][s].astype(np.float32)
