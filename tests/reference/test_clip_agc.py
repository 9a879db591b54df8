"""Proofs for the reference unit-wise adaptive gradient clipping (Brock et al., 2021).

Expected values come from hand-worked numbers and from a per-unit loop over np.linalg.norm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TOL
from gradfast.reference import adaptive_grad_clip
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float32, np.float64]


def agc_loop(grad, weight, clipping, eps):
    """AGC one unit at a time in float64: rows along axis 0, or the whole array for ndim <= 1."""
    g = np.asarray(grad, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    out = g.copy()
    units = [(i,) for i in range(g.shape[0])] if g.ndim > 1 else [...]
    for u in units:
        w_norm = np.linalg.norm(w[u].ravel())
        g_norm = np.linalg.norm(g[u].ravel())
        max_norm = clipping * max(w_norm, eps)
        if g_norm > max_norm:
            out[u] = g[u] * (max_norm / max(g_norm, 1e-6))
    return out


def _readonly(a):
    a.flags.writeable = False
    return a


def test_by_hand():
    params = {
        "W": np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]]),  # row norms 5, 0, 1
        "b": np.array([1.0, 2.0, 2.0]),  # 1-D: one unit of norm 3
    }
    grads = {
        "W": np.array([[6.0, 8.0], [0.0, 3e-4], [0.05, 0.0]]),
        "b": np.array([0.0, 0.0, 1.0]),
    }
    out = adaptive_grad_clip(grads, params, clipping=0.1, eps=1e-3)
    assert out is grads
    # row 0: max_norm = 0.1 * 5 = 0.5 < ||G|| = 10, so G *= 0.5 / 10
    np.testing.assert_allclose(grads["W"][0], [0.3, 0.4], rtol=1e-15)
    # row 1: zero weights use eps: max_norm = 0.1 * 1e-3 = 1e-4 < 3e-4, so G *= 1e-4 / 3e-4
    np.testing.assert_allclose(grads["W"][1], [0.0, 1e-4], rtol=1e-12)
    # row 2: max_norm = 0.1 >= 0.05: untouched, bit for bit
    assert grads["W"][2].tolist() == [0.05, 0.0]
    # bias: max_norm = 0.3 < 1
    np.testing.assert_allclose(grads["b"], [0.0, 0.0, 0.3], rtol=1e-15)
    np.testing.assert_array_equal(params["W"], [[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])


def test_gradient_norm_floor():
    # a tiny gradient above a tinier max_norm is scaled by max_norm / 1e-6, not / ||G||
    g = {"w": np.array([1e-8, 0.0])}
    adaptive_grad_clip(g, {"w": np.zeros(2)}, clipping=1e-6, eps=1e-3)  # max_norm = 1e-9
    np.testing.assert_allclose(g["w"], [1e-8 * (1e-9 / 1e-6), 0.0], rtol=1e-12)


def test_units_of_higher_rank_arrays_are_rows():
    # a (2, 2, 2) conv-like kernel: unit i is w[i, :, :]
    w = np.zeros((2, 2, 2))
    w[0] = 1.0  # norm 2
    w[1, 0, 0] = 4.0  # norm 4
    g = np.zeros((2, 2, 2))
    g[0] = 0.5  # norm 1, max_norm 0.5 * 2 = 1: equal, so not clipped
    g[1, 1, 1] = 3.0  # norm 3 > 0.5 * 4 = 2: scaled by 2/3
    grads = {"k": g}
    adaptive_grad_clip(grads, {"k": w}, clipping=0.5)
    np.testing.assert_array_equal(grads["k"][0], np.full((2, 2), 0.5))
    np.testing.assert_allclose(grads["k"][1, 1, 1], 2.0, rtol=1e-15)


def test_seed_bias_layout_has_one_element_units():
    # (n, 1) biases have ndim 2: every element is its own unit
    grads = {"b": np.array([[1.0], [1.0]])}
    adaptive_grad_clip(grads, {"b": np.array([[10.0], [0.0]])}, clipping=0.5, eps=0.1)
    np.testing.assert_allclose(grads["b"], [[1.0], [0.05]], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_and_empty_arrays(dtype):
    grads = {
        "s": np.array(5.0, dtype),
        "e0": np.zeros((0, 3), dtype),
        "e1": np.zeros((3, 0), dtype),
        "e2": np.zeros(0, dtype),
    }
    params = {"s": np.array(-2.0, dtype), **{k: np.zeros_like(v) for k, v in grads.items() if k != "s"}}
    adaptive_grad_clip(grads, params, clipping=0.5)
    assert grads["s"].shape == () and grads["s"] == dtype(1.0)
    assert grads["e0"].shape == (0, 3) and grads["e1"].shape == (3, 0)
    assert adaptive_grad_clip({}, {}) == {}


def test_nan_and_inf_propagate_without_warnings():
    grads = {"w": np.array([[np.nan, 1.0], [np.inf, 0.0], [100.0, 0.0]])}
    params = {"w": np.array([[1.0, 1.0], [1.0, 1.0], [np.nan, 0.0]])}
    adaptive_grad_clip(grads, params, clipping=0.1)
    assert np.isnan(grads["w"][0, 0]) and grads["w"][0, 1] == 1.0  # NaN norm: never clipped
    assert np.isnan(grads["w"][1, 0])  # inf * (max_norm / inf) = inf * 0
    assert grads["w"][2, 0] == 100.0  # NaN weights: max_norm is NaN, never clipped


@given(
    dtype=st.sampled_from(DTYPES),
    shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), min_size=1, max_size=4),
    clipping=st.floats(1e-3, 1.0),
    eps=st.sampled_from([0.0, 1e-3, 0.5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_per_unit_loop(dtype, shapes, clipping, eps, seed):
    rng = np.random.default_rng(seed)
    params, grads = {}, {}
    for i, shape in enumerate(shapes):
        params[f"p{i}"] = np.asarray(rng.standard_normal(shape)).astype(dtype)
        # scale some units up and some down so that both branches are taken
        scale = np.exp(rng.uniform(-6, 3, size=shape[:1] + (1,) * (len(shape) - 1) if len(shape) > 1 else ()))
        grads[f"p{i}"] = np.asarray(rng.standard_normal(shape) * scale).astype(dtype)
    want = {k: agc_loop(g, params[k], clipping, eps) for k, g in grads.items()}
    p_before = {k: p.copy() for k, p in params.items()}
    adaptive_grad_clip(grads, params, clipping, eps)
    for k, g in grads.items():
        assert g.dtype == dtype
        np.testing.assert_allclose(g, want[k], **TOL[np.dtype(dtype)])
        np.testing.assert_array_equal(params[k], p_before[k])


@pytest.mark.parametrize("dtype", DTYPES)
def test_params_of_any_layout_are_read_by_index(dtype):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 6)).astype(dtype)
    g = (rng.standard_normal((4, 6)) * 10).astype(dtype)
    a, b, c = {"w": g.copy()}, {"w": g.copy()}, {"w": g[:, ::2].copy()}
    adaptive_grad_clip(a, {"w": w})
    adaptive_grad_clip(b, {"w": _readonly(np.asfortranarray(w))})
    adaptive_grad_clip(c, {"w": w[:, ::2]})
    np.testing.assert_array_equal(a["w"], b["w"])
    np.testing.assert_allclose(c["w"], agc_loop(g[:, ::2], w[:, ::2], 0.01, 1e-3), **TOL[np.dtype(dtype)])


def _bad_cases():
    ones = lambda *s: np.ones(s)  # noqa: E731
    same = np.ones((2, 3))
    buf = np.ones(8)
    buf2 = np.ones(8)
    return [
        (
            {"w": np.ones((2, 3), np.int64)},
            {"w": ones(2, 3)},
            TypeError,
            r"adaptive_grad_clip: gradients\['w'\] must have dtype float32 or float64, got int64",
        ),
        (
            {"w": ones(2, 3)},
            {"w": np.ones((2, 3), np.float16)},
            TypeError,
            r"params\['w'\] must have dtype float32 or float64, got float16",
        ),
        (
            {"w": ones(2, 3)},
            {"w": np.ones((2, 3), np.float32)},
            TypeError,
            r"params\['w'\] must have dtype float64 like the others, got float32",
        ),
        (
            {"w": ones(2, 3), "v": np.ones(2, np.float32)},
            {"w": ones(2, 3), "v": np.ones(2, np.float32)},
            TypeError,
            r"gradients\['v'\] must have dtype float64 like the others",
        ),
        ({"w": ones(2, 6)[:, ::2]}, {"w": ones(2, 3)}, ValueError, r"gradients\['w'\] must be C-contiguous"),
        ({"w": np.asfortranarray(ones(2, 3))}, {"w": ones(2, 3)}, ValueError, r"gradients\['w'\] must be C-contiguous"),
        ({"w": _readonly(ones(2, 3))}, {"w": ones(2, 3)}, ValueError, r"gradients\['w'\] must be writeable"),
        ({"w": same}, {"w": same}, ValueError, r"gradients\['w'\] must not share memory with params\['w'\]"),
        (
            {"a": buf[:5], "b": buf[4:]},
            {"a": ones(5), "b": ones(4)},
            ValueError,
            r"gradients\['(a|b)'\] must not share memory with gradients\['(a|b)'\]",
        ),
        (
            {"a": buf2[:5], "b": ones(4)},
            {"a": ones(5), "b": buf2[4:]},
            ValueError,
            r"gradients\['a'\] must not share memory with params\['b'\]",
        ),
        ({"w": ones(2, 3)}, {"w": ones(3, 2)}, ValueError, r"params\['w'\] must have shape \(2, 3\), got"),
        ({"w": ones(2, 3)}, {}, ValueError, r"params must have key 'w' like gradients"),
        (
            {"w": ones(2, 3)},
            {"w": ones(2, 3), "x": ones(1)},
            ValueError,
            r"params must have only the keys of gradients, got extra key 'x'",
        ),
        ([ones(2)], {"w": ones(2)}, TypeError, r"gradients must be a dict of numpy arrays"),
        ({"w": ones(2)}, None, TypeError, r"params must be a dict of numpy arrays, got NoneType"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_changes_nothing(case):
    grads, params, exc, match = _bad_cases()[case]
    arrays = [a for d in (grads, params) if isinstance(d, dict) for a in d.values()]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=match):
        adaptive_grad_clip(grads, params, clipping=1e-3)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"clipping": -0.1}, ValueError, r"adaptive_grad_clip: clipping must be a finite number in \[0.0"),
        ({"clipping": math.inf}, ValueError, r"clipping must be a finite number"),
        ({"eps": -1e-3}, ValueError, r"eps must be a finite number in \[0.0, inf\]"),
        ({"eps": math.nan}, ValueError, r"eps must be a finite number"),
        ({"clipping": "0.1"}, TypeError, r"clipping must be a real number, got str"),
    ],
)
def test_bad_hyperparameters_change_nothing(kwargs, exc, match):
    grads = {"w": np.full((2, 2), 100.0)}
    with pytest.raises(exc, match=match):
        adaptive_grad_clip(grads, {"w": np.ones((2, 2))}, **kwargs)
    np.testing.assert_array_equal(grads["w"], np.full((2, 2), 100.0))


@given(
    spans=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 8), st.booleans()), min_size=1, max_size=8),
    separate=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_overlap_sweep_agrees_with_pairwise_may_share_memory(spans, separate):
    # the O(n log n) sweep must raise exactly when some pair with a written array overlaps
    from gradfast._validate import no_overlaps

    buf = np.zeros(40)
    arrays = []
    for i, (start, length, writes) in enumerate(spans):
        a = np.zeros(length) if separate[i] else buf[start : start + length]
        arrays.append((f"a{i}", a, writes))
    written = [(n, a) for n, a, w in arrays if w]
    read = [(n, a) for n, a, w in arrays if not w]
    expect = any(
        np.may_share_memory(a, b) for i, (_, a, wa) in enumerate(arrays) for (_, b, wb) in arrays[i + 1 :] if wa or wb
    )
    if expect:
        with pytest.raises(ValueError, match=r"f: a\d+ must not share memory with a\d+, got overlapping"):
            no_overlaps("f", written, read)
    else:
        no_overlaps("f", written, read)
