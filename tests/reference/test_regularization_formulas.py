"""compute_regularization: the penalty by direct sums, its gradient by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import compute_regularization
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

dtypes = st.sampled_from([np.float32, np.float64])
lambdas = st.floats(0.0, 2.0)


@st.composite
def weight_dicts(draw, min_abs=0.0):
    """1-3 arrays of one dtype, magnitudes in [min_abs, 3]."""
    dtype = draw(dtypes)
    n = draw(st.integers(1, 3))
    out = {}
    for i in range(n):
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
        mags = draw(hnp.arrays(np.float64, shape, elements=st.floats(min_abs, 3.0)))
        signs = draw(hnp.arrays(np.bool_, shape))
        out[f"W{i}"] = np.where(signs, -mags, mags).astype(dtype)
    return out


def penalty_direct(weights, l1, l2):
    """Element by element in Python floats."""
    total_abs = sum(abs(float(x)) for w in weights.values() for x in w.ravel())
    total_sq = sum(float(x) * float(x) for w in weights.values() for x in w.ravel())
    return l1 * total_abs + l2 * total_sq


@given(weight_dicts(), lambdas, lambdas)
def test_penalty_is_the_elastic_net_sum(weights, l1, l2):
    before = {k: w.copy() for k, w in weights.items()}
    penalty, _ = compute_regularization(weights, l1, l2)
    assert type(penalty) is float
    assert penalty == pytest.approx(penalty_direct(weights, l1, l2), rel=1e-12, abs=1e-300)
    for k in weights:
        np.testing.assert_array_equal(weights[k], before[k])


@given(weight_dicts(min_abs=1e-2), lambdas, lambdas)
def test_gradient_is_the_finite_difference_of_the_penalty(weights, l1, l2):
    _, grads = compute_regularization(weights, l1, l2)
    h = 1e-5  # far below min |w| = 1e-2, so |w| is smooth over [w - h, w + h]
    w64 = {k: w.astype(np.float64) for k, w in weights.items()}
    for key, w in w64.items():
        g = grads[key]
        assert g.dtype == weights[key].dtype and g.shape == w.shape and g.flags.c_contiguous
        assert not np.shares_memory(g, weights[key])
        fd = np.empty_like(w)
        for i in np.ndindex(w.shape):
            plus = {**w64, key: w.copy()}
            minus = {**w64, key: w.copy()}
            plus[key][i] += h
            minus[key][i] -= h
            fd[i] = (compute_regularization(plus, l1, l2)[0] - compute_regularization(minus, l1, l2)[0]) / (2 * h)
        tol = 1e-6 if g.dtype == np.float64 else 2e-5
        np.testing.assert_allclose(g, fd, rtol=tol, atol=tol)


def test_sign_of_zero_is_zero_and_hand_values():
    w = np.array([0.0, -0.0, 1.0, -2.0])
    penalty, grads = compute_regularization({"w": w}, lambda_l1=0.5, lambda_l2=0.25)
    assert penalty == 0.5 * 3.0 + 0.25 * 5.0
    # 0.5*sign(w) + 2*0.25*w
    np.testing.assert_array_equal(grads["w"], [0.0, 0.0, 1.0, -1.5])


def test_any_layout_is_read_and_results_are_new_c_arrays():
    base = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    f = np.asfortranarray(base)
    ro = base[:, ::2].copy()
    ro.flags.writeable = False
    penalty, grads = compute_regularization({"f": f, "ro": ro}, 0.1, 0.2)
    for key, src in (("f", f), ("ro", ro)):
        expected = np.float32(0.1) * np.sign(src) + np.float32(0.4) * src
        np.testing.assert_allclose(grads[key], expected, rtol=1e-6)
        assert grads[key].flags.c_contiguous and grads[key].dtype == np.float32
    assert penalty == pytest.approx(penalty_direct({"f": f, "ro": ro}, 0.1, 0.2), rel=1e-12)


def test_empty_dict_and_zero_lambdas():
    assert compute_regularization({}) == (0.0, {})
    w = np.array([[1.5, -2.0]])
    penalty, grads = compute_regularization({"w": w}, 0.0, 0.0)
    assert penalty == 0.0
    np.testing.assert_array_equal(grads["w"], np.zeros_like(w))


def test_nan_and_inf_propagate_without_warnings():
    w = np.array([np.nan, 1.0, -np.inf], dtype=np.float32)
    penalty, grads = compute_regularization({"w": w})
    assert np.isnan(penalty)
    g = grads["w"]
    assert np.isnan(g[0]) and g[2] == -np.inf and np.isfinite(g[1])


@pytest.mark.parametrize(
    ("weights", "kwargs", "exc", "match"),
    [
        (
            [np.ones(3)],
            {},
            TypeError,
            r"compute_regularization: weights must be a dict of numpy arrays, got list",
        ),
        ({"a": [1.0, 2.0]}, {}, TypeError, r"weights\['a'\] must be a numpy.ndarray, got list"),
        (
            {"a": np.ones(3, dtype=np.int64)},
            {},
            TypeError,
            r"weights\['a'\] must have dtype float32 or float64",
        ),
        (
            {"a": np.ones(3), "b": np.ones(2, dtype=np.float32)},
            {},
            TypeError,
            r"weights\['b'\] must have dtype float64 like the others, got float32",
        ),
        (
            {"a": np.ones(3)},
            {"lambda_l1": -0.1},
            ValueError,
            r"lambda_l1 must be a finite number in \[0.0, inf\]",
        ),
        ({"a": np.ones(3)}, {"lambda_l2": np.nan}, ValueError, r"lambda_l2 must be a finite number"),
        ({"a": np.ones(3)}, {"lambda_l2": "0.1"}, TypeError, r"lambda_l2 must be a real number, got str"),
    ],
)
def test_bad_input(weights, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        compute_regularization(weights, **kwargs)
