"""BatchNorm: finite-difference gradients, running statistics, eval mode, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import BatchNorm
from hypothesis import given
from hypothesis import strategies as st


def per_channel(x: np.ndarray) -> np.ndarray:
    """(C, n): every value of channel c in row c (channels are axis 1)."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


def from_per_channel(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    moved = (shape[1], shape[0]) + shape[2:]
    return np.moveaxis(rows.reshape(moved), 0, 1)


def direct_forward(x, gamma, beta, mean, var, eps):
    """gamma * (x - mean) / sqrt(var + eps) + beta, channel by channel."""
    rows = per_channel(x.astype(np.float64))
    out = np.stack([g * (r - m) / np.sqrt(v + eps) + b for r, g, b, m, v in zip(rows, gamma, beta, mean, var)])
    return from_per_channel(out, x.shape)


def fd_grad(f, a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of a (perturbed in place)."""
    g = np.empty(a.shape)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        fp = f()
        a[idx] = old - h
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


def make_layer(c, rng, *, dtype=np.float64):
    bn = BatchNorm(c, eps=1e-3, momentum=0.2, dtype=dtype)
    bn.gamma[...] = rng.uniform(0.5, 2.0, c)
    bn.beta[...] = rng.normal(size=c)
    bn.running_mean[...] = rng.normal(size=c)
    bn.running_var[...] = rng.uniform(0.5, 2.0, c)
    return bn


@pytest.mark.parametrize("shape", [(5, 3), (2, 3), (4, 2, 3), (1, 3, 4), (3, 1, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(shape, training):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    bn = make_layer(c, rng)
    x = rng.normal(size=shape) * 2 + 0.5
    r = rng.normal(size=shape)  # loss = sum(r * out), so grad_output = r

    def loss():
        return float(np.sum(r * bn.forward(x, training=training)))

    bn.forward(x, training=training)
    grad_x = bn.backward(r)
    grad_gamma, grad_beta = bn.grad_gamma.copy(), bn.grad_beta.copy()
    fd_x, fd_gamma, fd_beta = fd_grad(loss, x), fd_grad(loss, bn.gamma), fd_grad(loss, bn.beta)
    np.testing.assert_allclose(grad_x, fd_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_gamma, fd_gamma, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_beta, fd_beta, rtol=1e-6, atol=1e-8)
    assert grad_x.dtype == grad_gamma.dtype == grad_beta.dtype == np.float64
    assert grad_gamma.shape == grad_beta.shape == (c,)


def test_training_gradient_sums_to_zero_per_channel():
    # the batch mean removes any constant shift, so grad_x sums to 0 over each channel
    rng = np.random.default_rng(3)
    bn = make_layer(4, rng)
    x = rng.normal(size=(6, 4, 5))
    bn.forward(x)
    gx = bn.backward(rng.normal(size=x.shape))
    np.testing.assert_allclose(per_channel(gx).sum(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 3), (5, 4, 6), (2, 2, 1)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_running_statistics_after_k_steps(shape, momentum):
    rng = np.random.default_rng(7)
    c = shape[1]
    bn = BatchNorm(c, momentum=momentum)
    rm_obj, rv_obj = bn.running_mean, bn.running_var
    rm, rv = np.zeros(c), np.ones(c)
    for _ in range(5):
        x = rng.normal(size=shape) * rng.uniform(0.5, 3) + rng.normal()
        bn.forward(x, training=True)
        rows = per_channel(x)
        rm = (1 - momentum) * rm + momentum * rows.mean(axis=1)
        rv = (1 - momentum) * rv + momentum * np.var(rows, axis=1, ddof=1)
    np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12, atol=1e-15)
    # updated in place
    assert bn.running_mean is rm_obj and bn.running_var is rv_obj


def test_training_output_uses_batch_statistics():
    rng = np.random.default_rng(8)
    bn = make_layer(3, rng)
    x = rng.normal(size=(7, 3, 4)) * 3
    rows = per_channel(x)
    expect = direct_forward(x, bn.gamma, bn.beta, rows.mean(axis=1), rows.var(axis=1), bn.eps)
    np.testing.assert_allclose(bn.forward(x), expect, rtol=1e-12, atol=1e-13)


def test_eval_output_uses_running_statistics():
    rng = np.random.default_rng(9)
    bn = BatchNorm(3, momentum=0.3)
    for _ in range(4):
        bn.forward(rng.normal(size=(10, 3)) * 2 + 1)
    bn.gamma[...] = [0.5, 1.5, 2.0]
    bn.beta[...] = [-1.0, 0.0, 3.0]
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    x = rng.normal(size=(4, 3))
    expect = direct_forward(x, bn.gamma, bn.beta, rm, rv, bn.eps)
    np.testing.assert_allclose(bn.forward(x, training=False), expect, rtol=1e-12, atol=1e-13)
    # eval does not touch the running statistics and works for a single sample
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    one = bn.forward(x[:1], training=False)
    np.testing.assert_allclose(one, expect[:1], rtol=1e-12)


def test_backward_uses_the_gamma_of_the_forward():
    rng = np.random.default_rng(10)
    bn = make_layer(2, rng)
    x, g = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    bn.forward(x)
    expect = bn.backward(g)
    bn.forward(x)
    bn.gamma *= 3.0  # e.g. an optimizer step between forward and backward
    np.testing.assert_array_equal(bn.backward(g), expect)


@given(
    n=st.integers(1, 6),
    c=st.integers(1, 4),
    length=st.one_of(st.none(), st.integers(1, 5)),
    momentum=st.floats(0.0, 1.0),
    eps=st.floats(1e-6, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_forward_hypothesis(n, c, length, momentum, eps, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) if length is None else (n, c, length)
    bn = BatchNorm(c, eps=eps, momentum=momentum)
    x = rng.normal(size=shape) * 3
    rows = per_channel(x)
    if rows.shape[1] < 2:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            bn.forward(x)
        return
    out = bn.forward(x)
    expect = direct_forward(x, np.ones(c), np.zeros(c), rows.mean(axis=1), rows.var(axis=1), eps)
    np.testing.assert_allclose(out, expect, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, momentum * rows.mean(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.running_var, (1 - momentum) + momentum * np.var(rows, axis=1, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_float32(shape):
    rng = np.random.default_rng(11)
    x = rng.normal(size=shape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    b32, b64 = BatchNorm(3, dtype=np.float32), BatchNorm(3)
    for a in ("gamma", "beta"):
        assert getattr(b32, a).dtype == np.float32
    out32 = b32.forward(x)
    out64 = b64.forward(x.astype(np.float64))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=2e-6, atol=1e-6)
    gx32, gx64 = b32.backward(g), b64.backward(g.astype(np.float64))
    assert gx32.dtype == b32.grad_gamma.dtype == b32.grad_beta.dtype == np.float32
    np.testing.assert_allclose(gx32, gx64, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(b32.grad_gamma, b64.grad_gamma, rtol=2e-6, atol=1e-6)
    assert b32.running_var.dtype == np.float32
    np.testing.assert_allclose(b32.running_var, b64.running_var, rtol=1e-6)


def test_nan_propagates_without_warning():
    bn = BatchNorm(2)
    x = np.array([[np.nan, 1.0], [2.0, 3.0], [4.0, 5.0]])
    out = bn.forward(x)
    assert np.all(np.isnan(out[:, 0])) and np.all(np.isfinite(out[:, 1]))
    assert np.isnan(bn.running_mean[0]) and np.isfinite(bn.running_mean[1])
    gx = bn.backward(np.ones_like(x))
    assert np.all(np.isnan(gx[:, 0]))


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((0,), {}, ValueError, r"BatchNorm: num_features must be an int >= 1, got 0"),
        ((3.0,), {}, TypeError, r"BatchNorm: num_features must be an int, got float"),
        ((3,), {"eps": -1.0}, ValueError, r"BatchNorm: eps must be a finite number in \(0.0, inf\]"),
        ((3,), {"momentum": 1.5}, ValueError, r"BatchNorm: momentum must be a finite number in \[0.0, 1.0\]"),
        ((3,), {"momentum": None}, TypeError, r"BatchNorm: momentum must be a real number, got NoneType"),
        ((3,), {"dtype": np.int64}, TypeError, r"BatchNorm: dtype must be float32 or float64"),
        ((3,), {"dtype": "bogus"}, TypeError, r"BatchNorm: dtype must be float32 or float64"),
    ],
)
def test_bad_construction(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BatchNorm(*args, **kwargs)


def test_backward_before_forward():
    with pytest.raises(ValueError, match=r"BatchNorm.backward: forward must be called before backward"):
        BatchNorm(3).backward(np.ones((2, 3)))


def test_bad_forward_changes_nothing():
    rng = np.random.default_rng(12)
    bn = make_layer(3, rng)
    x = rng.normal(size=(4, 3))
    g = rng.normal(size=(4, 3))
    bn.forward(x)
    grad = bn.backward(g)
    state = {a: getattr(bn, a).copy() for a in ("gamma", "beta", "running_mean", "running_var")}
    fwd = "BatchNorm.forward: x must"
    cases = [
        (TypeError, fwd + r" have dtype float64 like the layer, got float32", (x.astype(np.float32),)),
        (TypeError, fwd + r" be a numpy.ndarray, got list", ([[1.0, 2.0, 3.0]],)),
        (ValueError, fwd + r" have shape \(N, 3\) or \(N, 3, L\), got \(4, 2\)", (x[:, :2],)),
        (ValueError, r"x must have shape \(N, 3\) or \(N, 3, L\), got \(3,\)", (x[0],)),
        (ValueError, r"got \(2, 3, 2, 2\)", (np.ones((2, 3, 2, 2)),)),
        (ValueError, fwd + r" have more than 1 value per channel when training, got shape \(1, 3\)", (x[:1],)),
        (ValueError, r"more than 1 value per channel when training, got shape \(1, 3, 1\)", (x[:1, :, None],)),
        (TypeError, r"BatchNorm.forward: training must be a bool, got int", (x, 1)),
    ]
    for exc, match, args in cases:
        with pytest.raises(exc, match=match):
            bn.forward(*args)
    for a, v in state.items():
        np.testing.assert_array_equal(getattr(bn, a), v)
    np.testing.assert_array_equal(bn.backward(g), grad)  # the cache of the good forward is intact


def test_bad_attributes():
    bn = BatchNorm(3)
    x = np.random.default_rng(13).normal(size=(4, 3))
    bn.running_mean.flags.writeable = False
    with pytest.raises(ValueError, match=r"BatchNorm.forward: self.running_mean must be writeable"):
        bn.forward(x)
    np.testing.assert_array_equal(bn.running_var, 1.0)  # nothing written
    bn.forward(x, training=False)  # eval only reads the running statistics
    bn.running_mean = np.zeros(3)
    bn.gamma = np.ones(4)
    with pytest.raises(ValueError, match=r"BatchNorm.forward: self.gamma must have shape \(3,\), got \(4,\)"):
        bn.forward(x)
    bn.gamma = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"self.gamma must have dtype float64 like the others, got float32"):
        bn.forward(x)


def test_bad_backward():
    bn = BatchNorm(3, dtype=np.float32)
    bn.forward(np.ones((4, 3, 2), dtype=np.float32) * np.arange(4, dtype=np.float32)[:, None, None])
    with pytest.raises(ValueError, match=r"BatchNorm.backward: grad_output must have shape \(4, 3, 2\) like"):
        bn.backward(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match=r"BatchNorm.backward: grad_output must have dtype float32 like"):
        bn.backward(np.ones((4, 3, 2)))
    assert bn.grad_gamma is None and bn.grad_beta is None
