"""Dropout: keep rate, scaling, mask reuse, eval identity, the stream definition, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradfast.reference import Dropout
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from stream_oracle import M64, s_uniform


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_rate_and_mean(p, dtype):
    n = 100_000
    x = np.ones((250, 400), dtype=dtype)
    out = Dropout(p, seed=123).forward(x)
    assert out.dtype == np.dtype(dtype) and out.shape == x.shape
    kept = np.count_nonzero(out)
    # binomial(n, 1 - p): within 5 standard deviations
    assert abs(kept - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))
    # every kept value is 1 / (1 - p) rounded to the dtype; the mean stays 1 up to
    # 5 sd of a mean of n scaled Bernoullis (variance p / (1 - p))
    scale = dtype(1.0 / (1.0 - p))
    assert set(np.unique(out).tolist()) == {0.0, float(scale)}
    assert abs(out.astype(np.float64).mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n) + 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_backward_use_one_mask(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 7, 5)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    layer = Dropout(0.4, seed=9)
    out = layer.forward(x)
    scale = dtype(1.0 / 0.6)
    dropped = out == 0
    assert 0 < dropped.sum() < x.size
    np.testing.assert_array_equal(out[~dropped], x[~dropped] * scale)
    assert layer.mask.dtype == np.dtype(dtype) and layer.mask.shape == x.shape
    grad = layer.backward(g)
    assert grad.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(grad[dropped], 0)
    np.testing.assert_array_equal(grad[~dropped], g[~dropped] * scale)
    # backward is repeatable and leaves its input alone
    g0 = g.copy()
    np.testing.assert_array_equal(layer.backward(g), grad)
    np.testing.assert_array_equal(g, g0)


def test_mask_follows_the_stream_spec():
    seed, p = 2**64 - 12345, 0.35
    layer = Dropout(p, seed=seed)
    x = np.full((3, 4), 2.0)
    for call in range(3):
        out = layer.forward(x)
        # element i (C order) of call k is kept iff uniform(seed, k, i) >= p
        keep = [s_uniform(seed, call, i) >= p for i in range(x.size)]
        np.testing.assert_array_equal(out.ravel() != 0, keep)
    assert layer.num_training_calls == 3


def test_eval_is_identity_and_does_not_advance_the_stream():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 30))
    a, b = Dropout(0.5, seed=4), Dropout(0.5, seed=4)
    first = a.forward(x)
    y = a.forward(x, training=False)
    np.testing.assert_array_equal(y, x)
    assert y is not x and not np.shares_memory(y, x)
    assert a.mask is None
    g = rng.normal(size=x.shape)
    gb = a.backward(g)
    np.testing.assert_array_equal(gb, g)  # backward after an eval forward: identity
    assert gb is not g
    # the eval call did not consume a stream: the second training call matches b's second
    np.testing.assert_array_equal(b.forward(x), first)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert a.num_training_calls == b.num_training_calls == 2


def test_same_seed_same_masks_different_calls_different_masks():
    x = np.ones((50, 40))
    a, b, c = Dropout(0.5, seed=77), Dropout(0.5, seed=77), Dropout(0.5, seed=78)
    a1, a2 = a.forward(x), a.forward(x)
    np.testing.assert_array_equal(a1, b.forward(x))
    np.testing.assert_array_equal(a2, b.forward(x))
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(a1, c.forward(x))
    # seed=None draws fresh entropy per layer
    assert not np.array_equal(Dropout(0.5).forward(x), Dropout(0.5).forward(x))


def test_drop_rate_zero_keeps_everything():
    x = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    layer = Dropout(0.0, seed=0)
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_nan_propagates_and_no_warning():
    x = np.array([np.nan, np.inf, -np.inf, 1.0] * 50)
    out = Dropout(0.5, seed=3).forward(x)
    # dropped NaN/inf give NaN (x * 0), kept ones stay NaN/inf, as in PyTorch
    assert np.all(np.isnan(out[0::4]))
    assert np.all(np.isnan(out[1::4]) | (out[1::4] == np.inf))


def test_empty_and_zero_dim():
    layer = Dropout(0.5, seed=1)
    assert layer.forward(np.empty((0, 3))).shape == (0, 3)
    assert layer.backward(np.empty((0, 3))).shape == (0, 3)
    out = layer.forward(np.array(3.0))
    assert out.shape == () and float(out) in (0.0, 6.0)


@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(-10, 10, width=32),
    ),
    p=st.floats(0.0, 0.99),
    seed=st.integers(0, M64 - 1),
)
def test_forward_backward_hypothesis(x, p, seed):
    layer = Dropout(p, seed=seed)
    out = layer.forward(x)
    scale = x.dtype.type(1.0 / (1.0 - p))
    keep = np.array([s_uniform(seed, 0, i) >= p for i in range(x.size)]).reshape(x.shape)
    np.testing.assert_array_equal(out, np.where(keep, x * scale, x * x.dtype.type(0)))
    g = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(g), np.where(keep, scale, x.dtype.type(0)))


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "exc", "match"),
    [
        (1.0, ValueError, r"Dropout: drop_rate must be a finite number in \[0.0, 1.0\), got 1.0"),
        (-0.1, ValueError, r"drop_rate must be a finite number in \[0.0, 1.0\)"),
        (float("nan"), ValueError, r"drop_rate must be a finite number"),
        ("0.5", TypeError, r"Dropout: drop_rate must be a real number, got str"),
    ],
)
def test_bad_drop_rate(p, exc, match):
    with pytest.raises(exc, match=match):
        Dropout(p)
    layer = Dropout(0.2, seed=1)
    with pytest.raises(exc, match=match):
        layer.drop_rate = p
    assert layer.drop_rate == 0.2


def test_bad_seed():
    with pytest.raises(ValueError, match=r"Dropout: seed must be an int in \[0, 2\*\*64\)"):
        Dropout(0.5, seed=-3)
    with pytest.raises(TypeError, match=r"Dropout: seed must be an int"):
        Dropout(0.5, seed="x")


def test_backward_before_forward():
    with pytest.raises(ValueError, match=r"Dropout.backward: forward must be called before backward"):
        Dropout(0.5, seed=1).backward(np.ones(3))


def test_bad_forward_changes_nothing():
    layer = Dropout(0.5, seed=5)
    x = np.ones((4, 4))
    layer.forward(x)
    mask = layer.mask.copy()
    with pytest.raises(TypeError, match=r"Dropout.forward: x must be a numpy.ndarray, got list"):
        layer.forward([1.0, 2.0])
    with pytest.raises(TypeError, match=r"Dropout.forward: x must have dtype float32 or float64, got int64"):
        layer.forward(np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match=r"Dropout.forward: training must be a bool, got str"):
        layer.forward(np.ones(3), training="yes")
    assert layer.num_training_calls == 1
    np.testing.assert_array_equal(layer.mask, mask)
    np.testing.assert_array_equal(layer.backward(np.ones((4, 4))), mask)


def test_bad_backward():
    layer = Dropout(0.5, seed=5)
    layer.forward(np.ones((4, 4), dtype=np.float32))
    msg = r"Dropout.backward: grad_output must have shape \(4, 4\) like the last forward's x, got \(4, 3\)"
    with pytest.raises(ValueError, match=msg):
        layer.backward(np.ones((4, 3), dtype=np.float32))
    msg = r"Dropout.backward: grad_output must have dtype float32 like the last forward's x, got float64"
    with pytest.raises(TypeError, match=msg):
        layer.backward(np.ones((4, 4)))
    layer.forward(np.ones((2, 2), dtype=np.float32), training=False)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 2\)"):
        layer.backward(np.ones((4, 4), dtype=np.float32))
