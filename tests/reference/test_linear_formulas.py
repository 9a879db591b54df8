"""gradient_descent and sgd_optimizer: sample-by-sample re-derivations, convergence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import _random, gradient_descent, sgd_optimizer
from hypothesis import given
from hypothesis import strategies as st

dtypes = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def problem(seed, n, d, k=None, dtype=np.float64):
    rng = np.random.default_rng(seed)  # test data only
    X = rng.normal(size=(n, d)).astype(dtype)
    w = rng.normal(size=(d,) if k is None else (d, k)).astype(dtype)
    y = rng.normal(size=(n,) if k is None else (n, k)).astype(dtype)
    return X, y, w


def grad_by_samples(X, y, w):
    """(1/n) sum_i x_i (x_i . w - y_i), one sample at a time, in float64."""
    X, y, w = (np.asarray(a, dtype=np.float64) for a in (X, y, w))
    return sum(np.multiply.outer(X[i], X[i] @ w - y[i]) for i in range(len(X))) / len(X)


# -- gradient_descent --------------------------------------------------------------------------


@given(
    dtypes,
    st.integers(1, 8),
    st.integers(1, 4),
    st.sampled_from([None, 1, 3]),
    st.integers(0, 5),
    st.integers(0, 99),
)
def test_gradient_descent_matches_a_sample_by_sample_loop(dtype, n, d, k, epochs, seed):
    X, y, w = problem(seed, n, d, k, dtype)
    expected = w.astype(np.float64)
    for _ in range(epochs):
        expected = expected - 0.05 * grad_by_samples(X, y, expected)
    out = gradient_descent(X, y, w, learning_rate=0.05, epochs=epochs)
    assert out is w and w.dtype == dtype
    np.testing.assert_allclose(w, expected, **TOL[dtype])


def test_gradient_descent_converges_to_least_squares():
    X, y, w = problem(1, 40, 3)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    gradient_descent(X, y, w, learning_rate=0.3, epochs=2000)
    np.testing.assert_allclose(w, w_star, rtol=1e-9, atol=1e-10)


def test_the_seeds_example_with_integer_data():
    X = np.array([[1, 2], [2, 3], [3, 4]])
    y = np.array([5, 7, 9])
    w = np.array([0.5, -0.5])
    expected = w.copy()
    for _ in range(100):
        expected = expected - 0.01 * grad_by_samples(X, y, expected)
    gradient_descent(X, y, w)
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    # lists are converted too
    w32 = np.array([0.5, -0.5], dtype=np.float32)
    gradient_descent([[1, 2], [2, 3], [3, 4]], [5.0, 7.0, 9.0], w32, epochs=100)
    np.testing.assert_allclose(w32, expected, rtol=1e-5)


def test_zero_learning_rate_or_epochs_leave_weights_unchanged():
    X, y, w = problem(2, 5, 2)
    before = w.copy()
    gradient_descent(X, y, w, learning_rate=0.0)
    gradient_descent(X, y, w, epochs=0)
    sgd_optimizer(X, y, w, learning_rate=0.0, seed=1)
    np.testing.assert_array_equal(w, before)


# -- sgd_optimizer -----------------------------------------------------------------------------


def heavy_ball(X, y, w, lr, mu, batches_per_epoch):
    """The original design's momentum rule over given batches, in float64."""
    w = w.astype(np.float64)
    v = np.zeros_like(w)
    for batches in batches_per_epoch:
        for idx in batches:
            v = mu * v - lr * grad_by_samples(X[idx], y[idx], w)
            w = w + v
    return w


@given(
    dtypes,
    st.integers(1, 12),
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(0, 2**64 - 1),
)
def test_sgd_follows_the_documented_batches(dtype, n, d, batch_size, epochs, seed):
    X, y, w = problem(seed % 1000, n, d, dtype=dtype)
    batches = []
    for e in range(epochs):
        order = np.argsort(_random.bits(seed, e, n), kind="stable")
        assert sorted(order) == list(range(n))  # each row once per epoch
        batches.append([order[s : s + batch_size] for s in range(0, n, batch_size)])
    expected = heavy_ball(X, y, w, 0.05, 0.7, batches)
    out = sgd_optimizer(X, y, w, 0.05, batch_size, 0.7, epochs=epochs, seed=seed)
    assert out is w
    np.testing.assert_allclose(w, expected, **TOL[dtype])


@given(st.integers(1, 10), st.integers(1, 3), st.integers(1, 4), st.integers(0, 99))
def test_sgd_with_one_full_batch_is_heavy_ball_gradient_descent(n, d, epochs, seed):
    # independent of the shuffle: every epoch is one step on the full batch
    X, y, w = problem(seed, n, d, 2)
    expected = heavy_ball(X, y, w, 0.1, 0.5, [[np.arange(n)]] * epochs)
    sgd_optimizer(X, y, w, 0.1, batch_size=n + 3, momentum=0.5, epochs=epochs)
    np.testing.assert_allclose(w, expected, **TOL[np.float64])


def test_sgd_is_reproducible_with_a_seed():
    X, y, w = problem(3, 50, 3)
    a, b, c = w.copy(), w.copy(), w.copy()
    sgd_optimizer(X, y, a, batch_size=7, epochs=3, seed=42)
    sgd_optimizer(X, y, b, batch_size=7, epochs=3, seed=42)
    sgd_optimizer(X, y, c, batch_size=7, epochs=3, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    sgd_optimizer(X, y, w, batch_size=7, epochs=3)  # seed=None works


def test_sgd_converges_on_consistent_data():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(64, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    y = X @ w_true
    w = np.zeros(3)
    sgd_optimizer(X, y, w, learning_rate=0.02, batch_size=8, momentum=0.9, epochs=100, seed=0)
    np.testing.assert_allclose(w, w_true, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------

X0 = np.ones((4, 2))
Y0 = np.ones(4)


def weights():
    return np.zeros(2)


def read_only():
    w = np.zeros(2)
    w.flags.writeable = False
    return w


@pytest.mark.parametrize("fn", [gradient_descent, sgd_optimizer])
@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((X0, Y0, [0.0, 0.0]), {}, TypeError, r"weights must be a numpy.ndarray, got list"),
        ((X0, Y0, np.zeros(2, int)), {}, TypeError, r"weights must have dtype float32 or float64, got int64"),
        ((X0, Y0, read_only()), {}, ValueError, r"weights must be writeable, got a read-only array"),
        ((X0, Y0, np.zeros((4, 2))[:, 0][:2]), {}, ValueError, r"weights must be C-contiguous"),
        (
            (X0, Y0, np.zeros((2, 2, 2))),
            {},
            ValueError,
            r"weights must be 1-D \(d,\) or 2-D \(d, k\), got shape",
        ),
        (
            (X0.astype(np.float32), Y0, weights()),
            {},
            TypeError,
            r": X must have dtype float64 like the others, got float32",
        ),
        (
            (X0, Y0 + 0j, weights()),
            {},
            TypeError,
            r": y must be an array of real numbers, got dtype complex128",
        ),
        (
            (X0, [[1.0], [2.0, 3.0]], weights()),
            {},
            TypeError,
            r": y must be an array of real numbers, got list",
        ),
        (
            (np.ones(4), Y0, weights()),
            {},
            ValueError,
            r": X must be 2-D \(n, d\) with n >= 1, got shape \(4,\)",
        ),
        (
            (np.ones((0, 2)), np.ones(0), weights()),
            {},
            ValueError,
            r"X must be 2-D \(n, d\) with n >= 1, got shape \(0, 2\)",
        ),
        (
            (X0, Y0, np.zeros(3)),
            {},
            ValueError,
            r": weights must have 2 rows like X's 2 columns, got shape \(3,\)",
        ),
        ((X0, np.ones((4, 1)), weights()), {}, ValueError, r": y must have shape \(4,\), got \(4, 1\)"),
        ((X0, Y0, np.zeros((2, 3))), {}, ValueError, r": y must have shape \(4, 3\), got \(4,\)"),
        (
            (X0, Y0, weights()),
            {"learning_rate": -0.1},
            ValueError,
            r"learning_rate must be a finite number in \[0.0, inf\]",
        ),
    ],
)
def test_bad_input_changes_nothing(fn, args, kwargs, exc, match):
    w = args[2]
    before = np.array(w, copy=True)
    with pytest.raises(exc, match=rf"{fn.__name__}{match}" if match.startswith(":") else match):
        fn(*args, **kwargs)
    np.testing.assert_array_equal(np.asarray(w), before)


def test_weights_aliasing_the_data_is_refused():
    X = np.ones((3, 2))
    w = X[0]  # a C-contiguous, writeable view into X
    with pytest.raises(ValueError, match=r"gradient_descent: weights must not share memory with X"):
        gradient_descent(X, np.ones(3), w)
    y = np.ones(2)
    with pytest.raises(ValueError, match=r"sgd_optimizer: weights must not share memory with y"):
        sgd_optimizer(np.ones((2, 2)), y, y)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"epochs": -1}, ValueError, r"gradient_descent: epochs must be an int >= 0, got -1"),
        ({"epochs": 2.0}, TypeError, r"gradient_descent: epochs must be an int, got float"),
    ],
)
def test_gradient_descent_bad_epochs(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gradient_descent(X0, Y0, weights(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"batch_size": 0}, ValueError, r"sgd_optimizer: batch_size must be an int >= 1, got 0"),
        ({"momentum": 1.0}, ValueError, r"sgd_optimizer: momentum must be a finite number in \[0.0, 1.0\)"),
        ({"momentum": -0.5}, ValueError, r"sgd_optimizer: momentum must be a finite number"),
        ({"epochs": -2}, ValueError, r"sgd_optimizer: epochs must be an int >= 0, got -2"),
        ({"seed": -1}, ValueError, r"sgd_optimizer: seed must be an int in \[0, 2\*\*64\), got -1"),
        ({"seed": 2**64}, ValueError, r"sgd_optimizer: seed must be an int in \[0, 2\*\*64\)"),
        (
            {"seed": 1.5},
            TypeError,
            r"sgd_optimizer: seed must be an int in \[0, 2\*\*64\) or None, got float",
        ),
    ],
)
def test_sgd_bad_hyper_parameters_change_nothing(kwargs, exc, match):
    w = np.array([0.5, 0.25])
    with pytest.raises(exc, match=match):
        sgd_optimizer(X0, Y0, w, **kwargs)
    np.testing.assert_array_equal(w, [0.5, 0.25])
