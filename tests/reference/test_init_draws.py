"""initialize_weights: shapes, statistics of the draws, the stream definition, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradfast.reference import initialize_weights
from hypothesis import given
from hypothesis import strategies as st
from stream_oracle import s_normal, s_uniform


def expected_std(init, dist, fan_in, fan_out):
    """The standard deviation each scheme aims at (uniform on [-a, a] has std a / sqrt(3))."""
    denom = fan_in + fan_out if init == "xavier" else fan_in
    return math.sqrt(2.0 / denom) if dist == "normal" else math.sqrt(6.0 / denom) / math.sqrt(3.0)


@given(
    dims=st.lists(st.integers(1, 12), min_size=2, max_size=5),
    init=st.sampled_from(["he", "xavier"]),
    dist=st.sampled_from(["normal", "uniform"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_shapes_keys_dtype(dims, init, dist, dtype):
    w = initialize_weights(dims, init, distribution=dist, seed=3, dtype=dtype)
    assert set(w) == {f"{p}{layer}" for layer in range(1, len(dims)) for p in "Wb"}
    for layer in range(1, len(dims)):
        assert w[f"W{layer}"].shape == (dims[layer], dims[layer - 1])
        assert w[f"b{layer}"].shape == (dims[layer], 1)
        assert w[f"W{layer}"].dtype == np.dtype(dtype) and w[f"b{layer}"].dtype == np.dtype(dtype)
        assert w[f"W{layer}"].flags.c_contiguous
        assert not np.any(w[f"b{layer}"])
        assert np.all(np.isfinite(w[f"W{layer}"]))


@pytest.mark.parametrize("init", ["he", "xavier"])
@pytest.mark.parametrize("dims", [[300, 200], [1000, 64, 500], [50, 2000]])
def test_normal_std_matches_formula(init, dims):
    w = initialize_weights(dims, init, seed=11)
    for layer in range(1, len(dims)):
        W = w[f"W{layer}"]
        n = W.size
        s = expected_std(init, "normal", dims[layer - 1], dims[layer])
        assert abs(W.mean()) < 5 * s / math.sqrt(n)
        # the sample std of n normals has sd about s / sqrt(2n)
        assert abs(W.std() - s) < 5 * s / math.sqrt(2 * n)


@pytest.mark.parametrize("init", ["he", "xavier"])
@pytest.mark.parametrize("dims", [[300, 200], [1000, 64, 500], [50, 2000]])
def test_uniform_bounds_and_std(init, dims):
    w = initialize_weights(dims, init, distribution="uniform", seed=12)
    for layer in range(1, len(dims)):
        W = w[f"W{layer}"]
        n = W.size
        fan_in, fan_out = dims[layer - 1], dims[layer]
        a = math.sqrt(6.0 / (fan_in + fan_out)) if init == "xavier" else math.sqrt(6.0 / fan_in)
        assert np.all(np.abs(W) <= a)
        # the extremes come close to the limits: P(max < a (1 - 20/n)) = (1 - 10/n)^n < e^-10
        assert W.max() > a * (1 - 20 / n) and W.min() < -a * (1 - 20 / n)
        # var(x^2) for x uniform on [-a, a] is 4 a^4 / 45; propagate to the std
        s = a / math.sqrt(3.0)
        sd_var = math.sqrt(4 * a**4 / 45 / n)
        assert abs(W.mean()) < 5 * s / math.sqrt(n)
        assert abs(W.std() - s) < 5 * sd_var / (2 * s)


def test_default_is_he_normal():
    a = initialize_weights([40, 30], seed=1)
    b = initialize_weights([40, 30], "he", distribution="normal", seed=1, dtype=np.float64)
    np.testing.assert_array_equal(a["W1"], b["W1"])


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_normal_values_follow_the_stream(init):
    seed, dims = 2**63 + 17, [3, 4, 2]
    w = initialize_weights(dims, init, seed=seed)
    for layer in (1, 2):
        fan_in, fan_out = dims[layer - 1], dims[layer]
        s = math.sqrt(2.0 / (fan_in + fan_out)) if init == "xavier" else math.sqrt(2.0 / fan_in)
        flat = w[f"W{layer}"].ravel()  # C order
        expect = [s_normal(seed, layer, i) * s for i in range(flat.size)]
        np.testing.assert_allclose(flat, expect, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_uniform_values_follow_the_stream_exactly(init):
    seed, dims = 99, [5, 3, 4]
    w = initialize_weights(dims, init, distribution="uniform", seed=seed)
    for layer in (1, 2):
        fan_in, fan_out = dims[layer - 1], dims[layer]
        a = math.sqrt(6.0 / (fan_in + fan_out)) if init == "xavier" else math.sqrt(6.0 / fan_in)
        flat = w[f"W{layer}"].ravel()
        expect = [(2.0 * s_uniform(seed, layer, i) - 1.0) * a for i in range(flat.size)]
        np.testing.assert_array_equal(flat, expect)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_float32_is_the_float64_draw_rounded_once(dist):
    a = initialize_weights([7, 9, 3], "xavier", distribution=dist, seed=5, dtype=np.float32)
    b = initialize_weights([7, 9, 3], "xavier", distribution=dist, seed=5, dtype="float64")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k].astype(np.float32))


def test_seed_reproducible_and_distinct():
    a = initialize_weights([20, 10, 5], seed=7)
    b = initialize_weights([20, 10, 5], seed=7)
    c = initialize_weights([20, 10, 5], seed=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["W1"], c["W1"])
    # layers draw from different streams
    w = initialize_weights([4, 4, 4], seed=1)
    assert not np.array_equal(w["W1"], w["W2"])
    # seed=None: fresh entropy every call
    assert not np.array_equal(initialize_weights([20, 10])["W1"], initialize_weights([20, 10])["W1"])


def test_layer_dims_forms():
    ref = initialize_weights([3, 2], seed=1)["W1"]
    for dims in [(3, 2), np.array([3, 2]), [np.int64(3), np.int32(2)]]:
        np.testing.assert_array_equal(initialize_weights(dims, seed=1)["W1"], ref)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"layer_dims": [3]}, ValueError, r"initialize_weights: layer_dims must have at least 2 entries.* 1"),
        ({"layer_dims": []}, ValueError, r"layer_dims must have at least 2 entries"),
        ({"layer_dims": [3, 0]}, ValueError, r"layer_dims\[1\] must be an int >= 1, got 0"),
        ({"layer_dims": [-2, 3]}, ValueError, r"layer_dims\[0\] must be an int >= 1, got -2"),
        ({"layer_dims": [3, 2.0]}, TypeError, r"layer_dims\[1\] must be an int, got float"),
        ({"layer_dims": [3, True]}, TypeError, r"layer_dims\[1\] must be an int, got bool"),
        ({"layer_dims": "32"}, TypeError, r"layer_dims must be a sequence of ints, got str"),
        ({"layer_dims": 3}, TypeError, r"layer_dims must be a sequence of ints, got int"),
        ({"layer_dims": np.array([3.0, 2.0])}, TypeError, r"layer_dims must be a sequence of ints"),
        ({"initialization": "glorot"}, ValueError, r"initialization must be one of \('he', 'xavier'\)"),
        ({"initialization": None}, TypeError, r"initialization must be one of .* got NoneType"),
        ({"distribution": "gaussian"}, ValueError, r"distribution must be one of \('normal', 'uniform'\)"),
        ({"dtype": np.int32}, TypeError, r"initialize_weights: dtype must be float32 or float64"),
        ({"dtype": np.float16}, TypeError, r"dtype must be float32 or float64"),
        ({"dtype": "nonsense"}, TypeError, r"dtype must be float32 or float64, got 'nonsense'"),
        ({"seed": -1}, ValueError, r"initialize_weights: seed must be an int in \[0, 2\*\*64\)"),
        ({"seed": 0.5}, TypeError, r"initialize_weights: seed must be an int"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"layer_dims": [3, 2], **kwargs}
    dims = args.pop("layer_dims")
    with pytest.raises(exc, match=match):
        initialize_weights(dims, **args)
