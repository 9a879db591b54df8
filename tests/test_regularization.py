"""gradfast's Rust compute_regularization against the NumPy reference: gradients bitwise, the
penalty to rounding; any layout and mapping; bad input; threads."""

import types

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def weight_dicts(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    out = {}
    for i in range(draw(st.integers(0, 4))):
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40))
        out[f"W{i}"] = draw(
            hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32) | st.sampled_from([0.0, -0.0]))
        )
    return out


@given(weight_dicts(), st.floats(0.0, 2.0), st.floats(0.0, 2.0))
def test_regularization_matches_reference(weights, l1, l2):
    before = {k: w.copy() for k, w in weights.items()}
    p_gf, g_gf = gf.compute_regularization(weights, l1, l2)
    p_ref, g_ref = ref.compute_regularization(weights, l1, l2)
    assert type(p_gf) is float and p_gf == pytest.approx(p_ref, rel=1e-12, abs=1e-300)
    assert list(g_gf) == list(g_ref)
    for k in g_ref:
        assert g_gf[k].dtype == g_ref[k].dtype and g_gf[k].shape == g_ref[k].shape
        assert g_gf[k].tobytes() == g_ref[k].tobytes()  # bitwise, signed zeros included
        np.testing.assert_array_equal(weights[k], before[k])


def test_regularization_takes_any_layout_and_mapping():
    rng = np.random.default_rng(0)
    w = types.MappingProxyType({"a": rng.standard_normal((6, 4)).T, "b": rng.standard_normal(9)[::3]})
    p_gf, g_gf = gf.compute_regularization(w, 0.1, 0.3)
    p_ref, g_ref = ref.compute_regularization(w, 0.1, 0.3)
    assert p_gf == pytest.approx(p_ref, rel=1e-14)
    for k in w:
        assert g_gf[k].flags.c_contiguous
        np.testing.assert_array_equal(g_gf[k], g_ref[k])


def test_nan_propagates(impl):
    p, g = impl.compute_regularization({"w": np.array([np.nan, 1.0])}, 0.1, 0.1)
    assert np.isnan(p) and np.isnan(g["w"][0]) and g["w"][1] == 0.1 + 0.2


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (({"w": [1.0]},), TypeError, r"compute_regularization: weights\['w'\] must be a numpy.ndarray, got list"),
        (({"a": np.ones(2), "b": np.ones(2, np.float32)},), TypeError, r"weights\['b'\] must have dtype float64 like"),
        (([np.ones(2)],), TypeError, r"compute_regularization: weights must be a dict of numpy arrays, got list"),
        (({"w": np.ones(2)}, -1.0), ValueError, r"compute_regularization: lambda_l1 must be a finite number"),
        (({"w": np.ones(2)}, 0.1, float("inf")), ValueError, r"compute_regularization: lambda_l2 must be a finite"),
        (({"w": np.ma.ones(2)},), TypeError, r"weights\['w'\] must be a numpy.ndarray, got a numpy.ma.MaskedArray"),
    ],
)
def test_regularization_rejects_bad_input(impl, args, exc, match):
    with pytest.raises(exc, match=match):
        impl.compute_regularization(*args)


@pytest.fixture
def restore_threads():
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def test_regularization_is_bitwise_identical_for_any_thread_count(restore_threads):
    rng = np.random.default_rng(1)
    w = {"a": rng.standard_normal(3_000_001).astype(np.float32), "b": rng.standard_normal(5)}
    w["b"] = w["b"].astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        results.append(gf.compute_regularization(w, 0.01, 0.02))
    for p, g in results[1:]:
        assert p == results[0][0]
        for k in w:
            assert g[k].tobytes() == results[0][1][k].tobytes()
