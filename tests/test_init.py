"""gradfast's Rust initialize_weights against the NumPy reference: uniform and float64 normal draws
bitwise (both take the stream's own log and cos, operation for operation); float32 normals
bitwise or one ulp off (the float32 path shortens log and cos below float32's rounding, so a
float64 difference could straddle a float32 rounding boundary); the same numbers for every
thread count; bad arguments."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

DISTS = ("normal", "uniform")
INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in ulp between arrays of one dtype whose elements share their sign."""
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(np.signbit(a), np.signbit(b))
    i = INT[a.dtype]
    return np.abs(a.view(i).astype(np.int64) - b.view(i).astype(np.int64))


@given(
    dims=st.lists(st.integers(1, 40), min_size=2, max_size=4),
    init=st.sampled_from(["he", "xavier"]),
    dist=st.sampled_from(["normal", "uniform"]),
    seed=st.integers(0, 2**64 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_initialize_weights_matches_reference(dims, init, dist, seed, dtype):
    got = gf.initialize_weights(dims, init, distribution=dist, seed=seed, dtype=dtype)
    want = ref.initialize_weights(dims, init, distribution=dist, seed=seed, dtype=dtype)
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and got[k].flags.c_contiguous
        limit = 1 if dist == "normal" and dtype == np.float32 and k.startswith("W") else 0
        assert ulps(got[k], want[k]).max(initial=0) <= limit, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_draws_equal_the_reference_over_a_million_draws(dtype):
    got = gf.initialize_weights([1000, 1000], seed=12345, dtype=dtype)["W1"]
    want = ref.initialize_weights([1000, 1000], seed=12345, dtype=dtype)["W1"]
    d = ulps(got, want)
    if dtype == np.float32:
        assert d.max() <= 1 and np.mean(d == 0) > 0.9999
    else:
        assert d.max() == 0


@pytest.fixture
def restore_threads():
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def test_initialize_weights_is_the_same_for_any_thread_count(restore_threads):
    results = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        draws = [gf.initialize_weights([700, 1500], distribution=d, seed=7, dtype=np.float32) for d in DISTS]
        results.append([w["W1"] for w in draws])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"layer_dims": [3]}, ValueError, r"initialize_weights: layer_dims must have at least 2 entries"),
        ({"layer_dims": [3, 0]}, ValueError, r"initialize_weights: layer_dims\[1\] must be an int >= 1, got 0"),
        ({"layer_dims": "34"}, TypeError, r"initialize_weights: layer_dims must be a sequence of ints, got str"),
        ({"initialization": "lecun"}, ValueError, r"initialize_weights: initialization must be one of"),
        ({"distribution": 1}, TypeError, r"initialize_weights: distribution must be one of .*, got int"),
        ({"seed": -1}, ValueError, r"initialize_weights: seed must be an int in \[0, 2\*\*64\), got -1"),
        ({"dtype": np.int8}, TypeError, r"initialize_weights: dtype must be float32 or float64"),
    ],
)
def test_initialize_weights_rejects_bad_arguments(impl, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        impl.initialize_weights(**{"layer_dims": [3, 2], **kwargs})
