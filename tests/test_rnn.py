"""gradfast's Rust bptt against the NumPy reference, finite differences, errors and threads."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from gradfast import _core
from hypothesis import given
from hypothesis import strategies as st

#: Rust and NumPy sum the products in different orders; the recurrence amplifies the
#: difference a little over the steps.
TOL = {np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5}, np.dtype(np.float64): {"rtol": 1e-11, "atol": 1e-13}}


def problem(T, I, H, O, B, *, seed=0, dtype=np.float64):  # noqa: E741
    rng = np.random.default_rng(seed)
    w = {
        "Wx": rng.normal(scale=0.7, size=(H, I)),
        "Wh": rng.normal(scale=1.0 / np.sqrt(max(H, 1)), size=(H, H)),
        "Wy": rng.normal(scale=0.8, size=(O, H)),
    }
    X = rng.normal(size=(T, I, B))
    Y = rng.normal(size=(T, O, B))
    h0 = rng.uniform(-0.9, 0.9, size=(H, B))
    return {k: v.astype(dtype) for k, v in w.items()}, X.astype(dtype), Y.astype(dtype), h0.astype(dtype)


def assert_same(got, want):
    (g, loss), (wg, wloss) = got, want
    assert isinstance(loss, float)
    assert loss == pytest.approx(wloss, rel=TOL[g["Wx"].dtype]["rtol"])
    assert list(g) == ["Wx", "Wh", "Wy"]
    for k in g:
        assert g[k].dtype == wg[k].dtype and g[k].shape == wg[k].shape and g[k].flags.c_contiguous
        np.testing.assert_allclose(g[k], wg[k], **TOL[g[k].dtype], err_msg=k)


@given(
    T=st.integers(1, 12),
    I=st.integers(0, 9),
    H=st.integers(0, 20),
    O=st.integers(1, 5),
    B=st.integers(1, 6),
    dtype=st.sampled_from([np.float32, np.float64]),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference(T, I, H, O, B, dtype, data, seed):  # noqa: E741
    S = data.draw(st.integers(1, T))
    w, X, Y, h0 = problem(T, I, H, O, B, seed=seed, dtype=dtype)
    assert_same(gf.bptt(X, Y, h0, w, S), ref.bptt(X, Y, h0, w, S))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_issue_sizes_match_reference(dtype):
    # The benchmark's shapes: vector steps (B = 1) and GEMM steps (B = 32).
    for T, B, I, H, O in [(200, 1, 16, 32, 8), (30, 32, 64, 128, 16)]:  # noqa: E741
        w, X, Y, h0 = problem(T, I, H, O, B, seed=T, dtype=dtype)
        assert_same(gf.bptt(X, Y, h0, w, T - 3), ref.bptt(X, Y, h0, w, T - 3))


def test_vector_forms_and_sequences_match_reference():
    w, X, Y, h0 = problem(5, 3, 4, 2, 1, seed=6)
    forms = [
        ([x[:, 0] for x in X], [y[:, 0] for y in Y], h0[:, 0]),
        (X[:, :, 0], Y[:, :, 0], h0[:, 0]),
        ([x[:, 0] for x in X], Y, h0),
        (list(X), tuple(Y), h0),
    ]
    for xs, ys, h in forms:
        assert_same(gf.bptt(xs, ys, h, w, 4), ref.bptt(xs, ys, h, w, 4))


def test_non_contiguous_inputs_are_read_correctly():
    w, X, Y, h0 = problem(6, 3, 4, 2, 6, seed=3)
    Xv, Yv, h0v = X[:, :, ::2], Y[:, :, ::2], np.asfortranarray(h0[:, ::2])
    wv = {k: np.asfortranarray(v) for k, v in w.items()}
    assert_same(gf.bptt(Xv, Yv, h0v, wv, 6), ref.bptt(Xv, Yv, h0v, wv, 6))


def direct_loss(w, X, Y, h0, S):
    """The loss column by column, in float64, independent of both implementations."""
    total = 0.0
    for b in range(X.shape[2]):
        h = h0[:, b].astype(np.float64)
        for t in range(S):
            h = np.tanh(w["Wx"] @ X[t, :, b] + w["Wh"] @ h)
            total += float(np.sum((w["Wy"] @ h - Y[t, :, b]) ** 2))
    return total / (S * w["Wy"].shape[0] * X.shape[2])


@pytest.mark.parametrize(("T", "I", "H", "O", "B", "S"), [(3, 2, 4, 3, 1, 3), (5, 3, 4, 2, 3, 4), (4, 2, 3, 1, 5, 2)])
def test_gradients_match_finite_differences(T, I, H, O, B, S):  # noqa: E741
    w, X, Y, h0 = problem(T, I, H, O, B, seed=T * 7 + B)
    grads, loss = gf.bptt(X, Y, h0, w, S)
    assert loss == pytest.approx(direct_loss(w, X, Y, h0, S), rel=1e-12)
    eps = 1e-5
    for k, a in w.items():
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = direct_loss(w, X, Y, h0, S)
            a[idx] = old - eps
            minus = direct_loss(w, X, Y, h0, S)
            a[idx] = old
            assert grads[k][idx] == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-9)


def test_nan_propagates_as_in_the_reference():
    w, X, Y, h0 = problem(3, 2, 3, 2, 2, seed=10)
    X[1, 0, 0] = np.nan
    grads, loss = gf.bptt(X, Y, h0, w, 3)
    want, _ = ref.bptt(X, Y, h0, w, 3)
    assert np.isnan(loss)
    for k in grads:
        np.testing.assert_array_equal(np.isnan(grads[k]), np.isnan(want[k]))


# -- bad input -----------------------------------------------------------------------------


def _bad_calls():
    """Argument sets each with one mistake (the reference's own checks name them)."""
    w, X, Y, h0 = problem(4, 3, 5, 2, 2, seed=11)
    good = {"inputs": X, "targets": Y, "hidden_state": h0, "weights": w, "sequence_length": 4}
    bad = [
        {"weights": [1]},
        {"weights": {**w, "by": np.zeros(2)}},
        {"weights": {k: v for k, v in w.items() if k != "Wy"}},
        {"weights": {**w, "Wh": np.zeros((5, 4))}},
        {"weights": {**w, "Wh": w["Wh"].astype(np.float32)}},
        {"weights": {**w, "Wx": np.ma.masked_array(w["Wx"])}},
        {"inputs": X.astype(np.float32)},
        {"inputs": X[:, :2]},
        {"inputs": np.ma.masked_array(X)},
        {"targets": Y[:3]},
        {"hidden_state": h0.T},
        {"hidden_state": h0.view(np.matrix)},
        {"sequence_length": 0},
        {"sequence_length": 5},
        {"sequence_length": 2.0},
        {"sequence_length": 2**70},
    ]
    return [{**good, **b} for b in bad]


@pytest.mark.parametrize("args", _bad_calls())
def test_bad_input_raises_the_reference_error_and_changes_nothing(args):
    before = {k: np.array(v, copy=True) for k, v in args.items() if isinstance(v, np.ndarray)}
    with pytest.raises((TypeError, ValueError)) as want:
        ref.bptt(**args)
    with pytest.raises(want.type) as got:
        gf.bptt(**args)
    assert str(got.value) == str(want.value)
    for k, v in before.items():
        np.testing.assert_array_equal(args[k], v)


def test_the_binding_checks_its_arrays_itself():
    w, X, Y, h0 = problem(4, 3, 5, 2, 2, seed=12)
    g = [np.zeros_like(w[k]) for k in ("Wx", "Wh", "Wy")]
    call = [X, Y, h0, w["Wx"], w["Wh"], w["Wy"], 4, *g]

    def core(**over):
        args = list(call)
        for i, v in over.items():
            args[int(i[1:])] = v
        weights, grads = tuple(args[3:6]), tuple(args[7:10])
        _core.bptt("bptt", *args[:3], weights, grads, _core.BpttHyper(sequence_length=args[6]))

    with pytest.raises(ValueError, match=r"bptt: targets must have shape \(4, 2, 2\), got \(4, 2, 3\)"):
        core(a1=np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"bptt: inputs must be a 3-D array"):
        core(a0=X[:, :, 0])
    with pytest.raises(ValueError, match=r"bptt: sequence_length must be an int in \[1, 4\]"):
        core(a6=5)
    with pytest.raises(TypeError, match=r"bptt: targets must have dtype float64"):
        core(a1=Y.astype(np.float32))
    with pytest.raises(ValueError, match=r"bptt: grads\['Wx'\] must not share memory with weights\['Wx'\]"):
        core(a7=w["Wx"])
    with pytest.raises(ValueError, match=r"grads\['Wh'\] must be writeable"):
        ro = np.zeros((5, 5))
        ro.flags.writeable = False
        core(a8=ro)
    assert all(not a.any() for a in g)


def test_the_same_bits_for_every_thread_count():
    w, X, Y, h0 = problem(60, 64, 128, 16, 32, seed=13, dtype=np.float32)
    n = gf.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 5):
            gf.set_num_threads(threads)
            runs.append(gf.bptt(X, Y, h0, w, 60))
    finally:
        gf.set_num_threads(n)
    (g1, l1), *rest = runs
    for g, loss in rest:
        assert loss == l1
        for k in g1:
            np.testing.assert_array_equal(g[k], g1[k])
