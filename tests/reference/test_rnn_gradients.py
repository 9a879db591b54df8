"""bptt: loss against a direct forward, gradients against finite differences, layouts, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import bptt
from hypothesis import given
from hypothesis import strategies as st


def direct_loss(w, X, Y, h0, S):
    """The RNN loss column by column with vector operations (independent of the code under test)."""
    T, _, B = X.shape
    O = w["Wy"].shape[0]  # noqa: E741
    total = 0.0
    for b in range(B):
        h = h0[:, b].copy()
        for t in range(S):
            h = np.tanh(w["Wx"].dot(X[t, :, b]) + w["Wh"].dot(h))
            total += float(np.sum((w["Wy"].dot(h) - Y[t, :, b]) ** 2))
    return total / (S * O * B)


def fd_grads(w, X, Y, h0, S, h=1e-5):
    out = {}
    for k, a in w.items():
        g = np.empty(a.shape)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            fp = direct_loss(w, X, Y, h0, S)
            a[idx] = old - h
            fm = direct_loss(w, X, Y, h0, S)
            a[idx] = old
            g[idx] = (fp - fm) / (2 * h)
        out[k] = g
    return out


def problem(T, I, H, O, B, *, seed=0, dtype=np.float64, zero_h0=False):  # noqa: E741
    rng = np.random.default_rng(seed)
    w = {
        "Wx": rng.normal(scale=0.7, size=(H, I)),
        "Wh": rng.normal(scale=0.5, size=(H, H)),
        "Wy": rng.normal(scale=0.8, size=(O, H)),
    }
    X = rng.normal(size=(T, I, B))
    Y = rng.normal(size=(T, O, B))
    h0 = np.zeros((H, B)) if zero_h0 else rng.uniform(-0.9, 0.9, size=(H, B))
    cast = {k: v.astype(dtype) for k, v in w.items()}
    return cast, X.astype(dtype), Y.astype(dtype), h0.astype(dtype)


CASES = [
    # (T, I, H, O, B, S)
    (1, 1, 1, 1, 1, 1),
    (3, 2, 4, 3, 1, 3),
    (5, 3, 4, 2, 3, 4),
    (6, 4, 5, 3, 2, 6),
    (4, 2, 3, 1, 5, 2),
]


@pytest.mark.parametrize(("T", "I", "H", "O", "B", "S"), CASES)
@pytest.mark.parametrize("zero_h0", [False, True])
def test_gradients_match_finite_differences(T, I, H, O, B, S, zero_h0):  # noqa: E741
    w, X, Y, h0 = problem(T, I, H, O, B, seed=T * 7 + B, zero_h0=zero_h0)
    grads, loss = bptt(X, Y, h0, w, S)
    assert isinstance(loss, float)
    assert loss == pytest.approx(direct_loss(w, X, Y, h0, S), rel=1e-12)
    fd = fd_grads(w, X, Y, h0, S)
    assert set(grads) == {"Wx", "Wh", "Wy"}
    for k in grads:
        assert grads[k].shape == w[k].shape and grads[k].dtype == np.float64
        np.testing.assert_allclose(grads[k], fd[k], rtol=1e-6, atol=1e-9, err_msg=k)


def test_h0_matters():
    # the original code ignored hidden_state; here a different h0 changes loss and gradients
    w, X, Y, h0 = problem(3, 2, 3, 2, 2, seed=4)
    g1, l1 = bptt(X, Y, h0, w, 3)
    g2, l2 = bptt(X, Y, np.zeros_like(h0), w, 3)
    assert l1 != l2
    assert not np.allclose(g1["Wh"], g2["Wh"])
    assert np.any(g1["Wy"] != 0)  # the original code returned dWy = 0


@given(
    T=st.integers(1, 4),
    I=st.integers(1, 3),
    H=st.integers(1, 4),
    O=st.integers(1, 3),
    B=st.integers(1, 3),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
)
def test_directional_derivative_hypothesis(T, I, H, O, B, data, seed):  # noqa: E741
    S = data.draw(st.integers(1, T))
    w, X, Y, h0 = problem(T, I, H, O, B, seed=seed)
    grads, loss = bptt(X, Y, h0, w, S)
    assert loss == pytest.approx(direct_loss(w, X, Y, h0, S), rel=1e-12)
    rng = np.random.default_rng(seed + 1)
    d = {k: rng.normal(size=a.shape) for k, a in w.items()}
    eps = 1e-5
    plus = direct_loss({k: w[k] + eps * d[k] for k in w}, X, Y, h0, S)
    minus = direct_loss({k: w[k] - eps * d[k] for k in w}, X, Y, h0, S)
    analytic = sum(float(np.sum(grads[k] * d[k])) for k in w)
    assert analytic == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-9)


def test_sequence_and_array_inputs_agree():
    w, X, Y, h0 = problem(5, 3, 4, 2, 3, seed=5)
    ga, la = bptt(X, Y, h0, w, 4)
    gs, ls = bptt(list(X), tuple(Y), h0, w, 4)
    assert la == ls
    for k in ga:
        np.testing.assert_array_equal(ga[k], gs[k])


def test_vector_steps_agree_with_column_steps():
    w, X, Y, h0 = problem(4, 3, 5, 2, 1, seed=6)
    ref, lref = bptt(X, Y, h0, w, 4)
    forms = [
        ([x[:, 0] for x in X], [y[:, 0] for y in Y], h0[:, 0]),  # sequences of (I,), (O,); h0 (H,)
        (X[:, :, 0], Y[:, :, 0], h0[:, 0]),  # (T, I), (T, O) arrays
        ([x[:, 0] for x in X], Y, h0),  # vector inputs, column targets and h0
        (X, Y[:, :, 0], h0[:, 0]),  # B = 1 columns with vector targets and h0
    ]
    for xs, ys, h in forms:
        g, loss = bptt(xs, ys, h, w, 4)
        assert loss == pytest.approx(lref, rel=1e-14)
        for k in ref:
            np.testing.assert_allclose(g[k], ref[k], rtol=1e-13, atol=1e-15)


def test_steps_after_sequence_length_are_ignored():
    w, X, Y, h0 = problem(6, 2, 3, 2, 2, seed=7)
    g1, l1 = bptt(X, Y, h0, w, 3)
    X2, Y2 = X.copy(), Y.copy()
    X2[3:] = 100.0
    Y2[3:] = -100.0
    g2, l2 = bptt(X2, Y2, h0, w, 3)
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_inputs_are_not_modified():
    w, X, Y, h0 = problem(4, 2, 3, 2, 2, seed=8)
    copies = [a.copy() for a in (X, Y, h0, *w.values())]
    bptt(X, Y, h0, w, 4)
    for a, c in zip((X, Y, h0, *w.values()), copies):
        np.testing.assert_array_equal(a, c)


def test_float32():
    w64, X64, Y64, h064 = problem(5, 3, 4, 2, 3, seed=9)
    w32, X32, Y32, h032 = problem(5, 3, 4, 2, 3, seed=9, dtype=np.float32)
    g32, l32 = bptt(X32, Y32, h032, w32, 5)
    g64, l64 = bptt(X64, Y64, h064, w64, 5)
    assert isinstance(l32, float) and l32 == pytest.approx(l64, rel=1e-5)
    for k in g32:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-5)


def test_nan_propagates_without_warning():
    w, X, Y, h0 = problem(3, 2, 3, 2, 2, seed=10)
    X[1, 0, 0] = np.nan
    grads, loss = bptt(X, Y, h0, w, 3)
    assert np.isnan(loss)
    assert np.all(np.isnan(grads["Wx"][:, 0]))


# -- errors --------------------------------------------------------------------------------


def _good():
    return problem(4, 3, 5, 2, 2, seed=11)


def _call(**over):
    w, X, Y, h0 = _good()
    args = {"inputs": X, "targets": Y, "hidden_state": h0, "weights": w, "sequence_length": 4}
    args.update({k: v(args) if callable(v) else v for k, v in over.items()})
    return bptt(args["inputs"], args["targets"], args["hidden_state"], args["weights"], args["sequence_length"])


def _w(**over):
    def make(args):
        w = dict(args["weights"])
        for k, v in over.items():
            if v is None:
                del w[k]
            else:
                w[k] = v
        return w

    return make


@pytest.mark.parametrize(
    ("over", "exc", "match"),
    [
        ({"weights": [1]}, TypeError, r"bptt: weights must be a dict with keys 'Wx', 'Wh', 'Wy', got list"),
        ({"weights": _w(Wy=None)}, ValueError, r"bptt: weights must have key 'Wy', got it missing"),
        (
            {"weights": _w(by=np.zeros(2))},
            ValueError,
            r"weights must have only the keys .* got extra key 'by'",
        ),
        (
            {"weights": _w(Wh=np.zeros((5, 4)))},
            ValueError,
            r"bptt: weights\['Wh'\] must have shape \(5, 5\), got \(5, 4\)",
        ),
        (
            {"weights": _w(Wy=np.zeros((2, 4)))},
            ValueError,
            r"weights\['Wy'\] must have shape \(O, 5\), got \(2, 4\)",
        ),
        ({"weights": _w(Wy=np.zeros((0, 5)))}, ValueError, r"weights\['Wy'\] must have at least one row"),
        (
            {"weights": _w(Wx=np.zeros(5))},
            ValueError,
            r"weights\['Wx'\] must be a 2-D array, got shape \(5,\)",
        ),
        (
            {"weights": _w(Wh=np.zeros((5, 5), np.float32))},
            TypeError,
            r"weights\['Wh'\] must have dtype float64 like the others, got float32",
        ),
        (
            {"weights": _w(Wx=np.zeros((5, 3), int))},
            TypeError,
            r"weights\['Wx'\] must have dtype float32 or float64",
        ),
        (
            {"inputs": lambda a: a["inputs"].astype(np.float32)},
            TypeError,
            r"bptt: inputs must have dtype float64",
        ),
        (
            {"inputs": lambda a: a["inputs"][:, :2]},
            ValueError,
            r"bptt: inputs must have steps of shape \(3, B\) or \(3,\) .* got steps of shape \(2, 2\)",
        ),
        (
            {"inputs": lambda a: a["inputs"][0]},
            ValueError,
            r"inputs must have steps of shape \(3, B\) or \(3,\)",
        ),
        (
            {"inputs": lambda a: a["inputs"][..., None]},
            ValueError,
            r"bptt: inputs must be a \(T, D, B\) or \(T, D\)",
        ),
        ({"inputs": lambda a: a["inputs"][:, :, :0]}, ValueError, r"inputs must have a batch size B >= 1"),
        (
            {"inputs": lambda a: [a["inputs"][0], a["inputs"][1][:, :1]]},
            ValueError,
            r"bptt: inputs\[1\] must have shape \(3, 2\) like inputs\[0\], got \(3, 1\)",
        ),
        (
            {"inputs": lambda a: [a["inputs"][0].tolist()]},
            TypeError,
            r"bptt: inputs\[0\] must be a numpy.ndarray, got list",
        ),
        (
            {"inputs": 3.0},
            TypeError,
            r"bptt: inputs must be a numpy.ndarray or a sequence of numpy arrays, got float",
        ),
        (
            {"inputs": lambda a: [a["inputs"][0].astype(np.float32)]},
            TypeError,
            r"inputs\[0\] must have dtype float64",
        ),
        (
            {"targets": lambda a: a["targets"][:3]},
            ValueError,
            r"bptt: targets must have 4 steps like inputs, got 3",
        ),
        (
            {"targets": lambda a: a["targets"][:, :1]},
            ValueError,
            r"bptt: targets must have steps of shape \(2, 2\), got \(1, 2\)",
        ),
        (
            {"targets": lambda a: a["targets"][:, :, 0]},
            ValueError,
            r"targets must have steps of shape \(2, 2\), got \(2,\)",
        ),
        (
            {"hidden_state": lambda a: a["hidden_state"][:, 0]},
            ValueError,
            r"bptt: hidden_state must have shape \(5, 2\), got \(5,\)",
        ),
        (
            {"hidden_state": lambda a: a["hidden_state"].T},
            ValueError,
            r"hidden_state must have shape \(5, 2\), got \(2, 5\)",
        ),
        (
            {"hidden_state": lambda a: a["hidden_state"].tolist()},
            TypeError,
            r"bptt: hidden_state must be a numpy.ndarray",
        ),
        (
            {"hidden_state": lambda a: a["hidden_state"].astype(np.float32)},
            TypeError,
            r"hidden_state must have dtype float64",
        ),
        ({"sequence_length": 0}, ValueError, r"bptt: sequence_length must be an int >= 1, got 0"),
        ({"sequence_length": 5}, ValueError, r"bptt: sequence_length must be an int in \[1, 4\] .*, got 5"),
        ({"sequence_length": 2.0}, TypeError, r"bptt: sequence_length must be an int, got float"),
        ({"inputs": [], "targets": []}, ValueError, r"bptt: inputs must have at least one step, got 0"),
    ],
)
def test_bad_input(over, exc, match):
    with pytest.raises(exc, match=match):
        _call(**over)


def test_vector_form_messages():
    w, X, Y, h0 = problem(3, 2, 4, 3, 1, seed=12)
    xs = [x[:, 0] for x in X]
    with pytest.raises(ValueError, match=r"bptt: hidden_state must have shape \(4, 1\) or \(4,\), got \(3,\)"):
        bptt(xs, Y, h0[:3, 0], w, 3)
    with pytest.raises(ValueError, match=r"bptt: targets must have steps of shape \(3, 1\) or \(3,\), got \(2,\)"):
        bptt(xs, [y[:2, 0] for y in Y], h0, w, 3)
    with pytest.raises(ValueError, match=r"inputs\[0\] must be a \(D, B\) or \(D,\) array, got shape \(\)"):
        bptt([np.ones(())], Y, h0, w, 1)
