"""DistributedOptimizer (local accumulation): micro-batch gradients average to the full-batch one."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import DistributedOptimizer
from hypothesis import given
from hypothesis import strategies as st

dtypes = st.sampled_from([np.float32, np.float64])


def lstsq_gradient(X, y, W, b):
    """Gradient of mean over rows of 0.5 * ||X W + b - y||^2, sample by sample."""
    n = X.shape[0]
    gW = sum(np.outer(X[i], X[i] @ W + b - y[i]) for i in range(n)) / n
    gb = sum(X[i] @ W + b - y[i] for i in range(n)) / n
    return {"W": gW, "b": gb}


def test_none_before_any_contribution():
    assert DistributedOptimizer().compute_updates() is None


@given(
    dtypes,
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
)
def test_micro_batches_average_to_the_full_batch_gradient(dtype, k, m, d, o, workers, seed):
    rng = np.random.default_rng(seed)  # test data only
    n = k * m
    X, y = rng.normal(size=(n, d)), rng.normal(size=(n, o))
    W, b = rng.normal(size=(d, o)), rng.normal(size=o)
    opt = DistributedOptimizer(num_workers=workers, update_frequency=k)
    for j in range(k):
        rows = slice(j * m, (j + 1) * m)
        g = {key: v.astype(dtype) for key, v in lstsq_gradient(X[rows], y[rows], W, b).items()}
        ready = opt.accumulate_gradients(g)
        assert ready is (j == k - 1)
    avg = opt.compute_updates()
    full = lstsq_gradient(X, y, W, b)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    for key in full:
        assert avg[key].dtype == dtype
        np.testing.assert_allclose(avg[key], full[key], **tol)
    assert opt.step_count == 0 and opt.accumulated_gradients is None
    assert opt.compute_updates() is None


def test_average_over_calls_not_workers_and_reset():
    opt = DistributedOptimizer(num_workers=4, update_frequency=3)
    for v in (1.0, 2.0, 6.0):
        opt.accumulate_gradients({"g": np.full((2, 2), v, dtype=np.float32)})
    out = opt.compute_updates()
    np.testing.assert_array_equal(out["g"], np.full((2, 2), 3.0, dtype=np.float32))
    # fresh start after the reset
    assert opt.accumulate_gradients({"g": np.full((2, 2), 8.0, dtype=np.float32)}) is False
    np.testing.assert_array_equal(opt.compute_updates()["g"], np.full((2, 2), 8.0))


def test_keeps_counting_past_update_frequency():
    opt = DistributedOptimizer(update_frequency=2)
    results = [opt.accumulate_gradients({"g": np.array([float(i)])}) for i in range(4)]
    assert results == [False, True, True, True]
    np.testing.assert_array_equal(opt.compute_updates()["g"], [1.5])


def test_callers_arrays_are_copied_and_never_written():
    g1 = {"w": np.array([1.0, 2.0]), "f": np.asfortranarray(np.ones((2, 3)))}
    g2 = {"w": np.array([3.0, 4.0]), "f": np.ones((2, 3))}
    g2["f"].flags.writeable = False  # read-only contributions are fine
    keep1 = {k: v.copy() for k, v in g1.items()}
    opt = DistributedOptimizer(update_frequency=2)
    opt.accumulate_gradients(g1)
    opt.accumulate_gradients(g2)
    g1["w"][:] = 100.0  # the accumulator does not alias the first contribution
    out = opt.compute_updates()
    np.testing.assert_array_equal(out["w"], [2.0, 3.0])
    np.testing.assert_array_equal(out["f"], np.ones((2, 3)))
    np.testing.assert_array_equal(g1["f"], keep1["f"])
    for key in out:
        assert not np.shares_memory(out[key], g1[key]) and not np.shares_memory(out[key], g2[key])


@pytest.mark.parametrize(
    ("second", "exc", "match"),
    [
        ({"w": np.ones(2)}, ValueError, r"worker_gradients must have key 'b' like the accumulated gradients"),
        (
            {"w": np.ones(2), "b": np.ones(1), "x": np.ones(1)},
            ValueError,
            r"worker_gradients must have only the keys of the accumulated gradients, got extra key 'x'",
        ),
        (
            {"w": np.ones(3), "b": np.ones(1)},
            ValueError,
            r"worker_gradients\['w'\] must have shape \(2,\) and dtype float64 as the accumulated gradients, "
            r"got shape \(3,\)",
        ),
        (
            {"w": np.ones(2, np.float32), "b": np.ones(1, np.float32)},
            ValueError,
            r"worker_gradients\['w'\] must have shape \(2,\) and dtype float64 .* dtype float32",
        ),
        (
            {"w": np.ones(2), "b": np.ones(1, np.float32)},
            TypeError,
            r"worker_gradients\['b'\] must have dtype float64 like the others",
        ),
        (
            {"w": np.ones(2), "b": [1.0]},
            TypeError,
            r"worker_gradients\['b'\] must be a numpy.ndarray, got list",
        ),
        (
            {"w": np.ones(2), "b": np.ones(1, int)},
            TypeError,
            r"must have dtype float32 or float64, got int64",
        ),
        ([np.ones(2)], TypeError, r"worker_gradients must be a dict of numpy arrays, got list"),
    ],
)
def test_bad_contribution_changes_nothing(second, exc, match):
    opt = DistributedOptimizer(update_frequency=2)
    opt.accumulate_gradients({"w": np.array([1.0, 2.0]), "b": np.array([3.0])})
    with pytest.raises(exc, match=match):
        opt.accumulate_gradients(second)
    assert opt.step_count == 1
    out = opt.compute_updates()
    np.testing.assert_array_equal(out["w"], [1.0, 2.0])
    np.testing.assert_array_equal(out["b"], [3.0])


def test_bad_first_contribution_changes_nothing():
    opt = DistributedOptimizer()
    with pytest.raises(TypeError, match=r"worker_gradients\['b'\] must have dtype float32 like the others"):
        opt.accumulate_gradients({"a": np.ones(2, np.float32), "b": np.ones(2)})
    assert opt.step_count == 0 and opt.compute_updates() is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"num_workers": 0}, ValueError, r"DistributedOptimizer: num_workers must be an int >= 1, got 0"),
        (
            {"update_frequency": 0},
            ValueError,
            r"DistributedOptimizer: update_frequency must be an int >= 1, got 0",
        ),
        (
            {"update_frequency": 2.0},
            TypeError,
            r"DistributedOptimizer: update_frequency must be an int, got float",
        ),
    ],
)
def test_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DistributedOptimizer(**kwargs)
