"""gradfast's Rust gradient_descent and sgd_optimizer against the NumPy reference, errors, threads."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from gradfast import _core
from hypothesis import given
from hypothesis import strategies as st

TOL = {np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5}, np.dtype(np.float64): {"rtol": 1e-11, "atol": 1e-13}}

#: None: weights (d,); 1 and 3 columns take the row loop, 8 and 11 the GEMM
WIDTHS = st.sampled_from([None, 1, 3, 8, 11])


def problem(seed, n, d, k=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    w = rng.normal(size=(d,) if k is None else (d, k)).astype(dtype)
    y = rng.normal(size=(n,) if k is None else (n, k)).astype(dtype)
    return X, y, w


def both(name, X, y, w, *args, **kwargs):
    """The weights after the Rust and the reference call, from the same start."""
    a, b = w.copy(), w.copy()
    assert getattr(gf, name)(X, y, a, *args, **kwargs) is a
    assert getattr(ref, name)(X, y, b, *args, **kwargs) is b
    return a, b


def assert_close(a, b):
    assert a.dtype == b.dtype
    np.testing.assert_allclose(a, b, **TOL[a.dtype])


@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(1, 40),
    st.integers(1, 48),  # narrow X down its columns, wider X by the row loop
    WIDTHS,
    st.floats(0.0, 0.1),
    st.integers(0, 6),
    st.integers(0, 2**32 - 1),
)
def test_gradient_descent_matches_reference(dtype, n, d, k, lr, epochs, seed):
    X, y, w = problem(seed, n, d, k, dtype)
    assert_close(*both("gradient_descent", X, y, w, lr, epochs))


@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(1, 40),
    st.integers(1, 12),
    WIDTHS,
    st.integers(1, 50),
    st.floats(0.0, 0.95),
    st.integers(0, 3),
    st.integers(0, 2**64 - 1),
)
def test_sgd_matches_reference(dtype, n, d, k, batch, mu, epochs, seed):
    # Same seed, same batches: the shuffle is the reference's counter-based stream.
    X, y, w = problem(seed % 1000, n, d, k, dtype)
    assert_close(*both("sgd_optimizer", X, y, w, 0.02, batch, mu, epochs=epochs, seed=seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_blocks_and_epochs_match_reference(dtype):
    # 1300 rows: three row blocks summed in order; the GEMM at 9 columns. Gradient descent on
    # 20 columns works down the columns: 4100 rows are two or three blocks.
    for k in (None, 9):
        X, y, w = problem(5, 1300, 40, k, dtype)
        assert_close(*both("gradient_descent", X, y, w, 0.05, 30))
        assert_close(*both("sgd_optimizer", X, y, w, 0.01, 32, 0.9, epochs=2, seed=7))
        X, y, w = problem(6, 4100, 20, k, dtype)
        assert_close(*both("gradient_descent", X, y, w, 0.02, 30))


def test_integer_data_and_lists_as_in_the_seeds_example():
    for data in (
        (np.array([[1, 2], [2, 3], [3, 4]]), np.array([5, 7, 9])),
        ([[1, 2], [2, 3], [3, 4]], [5.0, 7.0, 9.0]),
    ):
        for dtype in (np.float32, np.float64):
            w = np.array([0.5, -0.5], dtype=dtype)
            assert_close(*both("gradient_descent", *data, w))
            assert_close(*both("sgd_optimizer", *data, w, 0.01, 2, 0.9, epochs=3, seed=1))


def test_sgd_seed_none_and_huge_counts():
    X, y, w = problem(3, 50, 3)
    a, b = w.copy(), w.copy()
    gf.sgd_optimizer(X, y, a, batch_size=7, epochs=2)
    gf.sgd_optimizer(X, y, b, batch_size=7, epochs=2)
    assert np.all(np.isfinite(a)) and not np.array_equal(a, w)
    assert not np.array_equal(a, b)  # two fresh seeds
    # A batch larger than X is one batch of all rows, as in the reference.
    assert_close(*both("sgd_optimizer", X, y, w, 0.1, 2**80, 0.5, epochs=2, seed=3))


# -- bad input -----------------------------------------------------------------------------

X0, Y0 = np.ones((4, 2)), np.ones(4)


def _read_only():
    w = np.zeros(2)
    w.flags.writeable = False
    return w


BAD = [
    ((X0, Y0, [0.0, 0.0]), {}),
    ((X0, Y0, np.zeros(2, int)), {}),
    ((X0, Y0, _read_only()), {}),
    ((X0, Y0, np.zeros((4, 2))[:, 0][:2]), {}),
    ((X0, Y0, np.zeros((2, 2, 2))), {}),
    ((X0.astype(np.float32), Y0, np.zeros(2)), {}),
    ((X0, Y0 + 0j, np.zeros(2)), {}),
    ((np.ones(4), Y0, np.zeros(2)), {}),
    ((np.ones((0, 2)), np.ones(0), np.zeros(2)), {}),
    ((X0, Y0, np.zeros(3)), {}),
    ((X0, np.ones((4, 1)), np.zeros(2)), {}),
    ((X0, Y0, np.ma.masked_array(np.zeros(2))), {}),
    ((np.ma.masked_array(X0), Y0, np.zeros(2)), {}),
    ((X0, Y0.view(np.matrix), np.zeros(2)), {}),
    ((X0, Y0, np.zeros(2)), {"learning_rate": -0.1}),
    ((X0, Y0, np.zeros(2)), {"learning_rate": float("nan")}),
    ((X0, Y0, np.zeros(2)), {"epochs": -1}),
    ((X0, Y0, np.zeros(2)), {"epochs": 2.0}),
]
BAD_SGD = [
    ((X0, Y0, np.zeros(2)), {"batch_size": 0}),
    ((X0, Y0, np.zeros(2)), {"momentum": 1.0}),
    ((X0, Y0, np.zeros(2)), {"seed": -1}),
    ((X0, Y0, np.zeros(2)), {"seed": 2**64}),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [("gradient_descent", *b) for b in BAD] + [("sgd_optimizer", *b) for b in BAD + BAD_SGD],
)
def test_bad_input_raises_the_reference_error_and_changes_nothing(name, args, kwargs):
    w = args[2]
    before = np.array(w, copy=True)
    with pytest.raises((TypeError, ValueError)) as want:
        getattr(ref, name)(*args, **kwargs)
    with pytest.raises(want.type) as got:
        getattr(gf, name)(*args, **kwargs)
    assert str(got.value) == str(want.value)
    np.testing.assert_array_equal(np.asarray(w), before)


def test_weights_aliasing_the_data_is_refused():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"gradient_descent: weights must not share memory with X"):
        gf.gradient_descent(X, np.ones(3), X[0])
    y = np.ones(2)
    with pytest.raises(ValueError, match=r"sgd_optimizer: weights must not share memory with y"):
        gf.sgd_optimizer(np.ones((2, 2)), y, y)


def test_the_binding_checks_its_arrays_and_hyper_parameters_itself():
    X, y, w = problem(1, 5, 3)
    gd = _core.GradientDescentHyper(learning_rate=0.1, epochs=2)
    with pytest.raises(ValueError, match=r"gradient_descent: y must have shape \(5,\), got \(4,\)"):
        _core.gradient_descent("gradient_descent", X, y[:4], w, gd)
    with pytest.raises(ValueError, match=r"gradient_descent: weights must be \(d,\) or \(d, k\) with d = 3"):
        _core.gradient_descent("gradient_descent", X, y, np.zeros(4), gd)
    with pytest.raises(TypeError, match=r"gradient_descent: X must have dtype float64"):
        _core.gradient_descent("gradient_descent", X.astype(np.float32), y, w, gd)
    bad = _core.SgdHyper(learning_rate=0.1, batch_size=0, momentum=0.5, epochs=1, seed=0)
    with pytest.raises(ValueError, match=r"sgd_optimizer: hyper-parameters must have batch_size >= 1"):
        _core.sgd_optimizer("sgd_optimizer", X, y, w, bad)
    assert repr(gd) == "GradientDescentHyper(learning_rate=0.1, epochs=2)"


@pytest.mark.parametrize("d", [64, 8])
def test_gradient_descent_gives_the_same_bits_for_every_thread_count(d):
    # 20,000 rows of float64: 10 MB of X at d = 64 (the row loop), 1.3 MB at d = 8 (down the
    # columns), past the 1 MiB the tests set, so the blocks run on the pool.
    X, y, w = problem(2, 20_000, d)
    n = gf.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 5):
            gf.set_num_threads(threads)
            a = w.copy()
            gf.gradient_descent(X, y, a, 0.01, 3)
            runs.append(a)
    finally:
        gf.set_num_threads(n)
    for a in runs[1:]:
        np.testing.assert_array_equal(a, runs[0])
