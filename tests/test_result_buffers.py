"""Large result arrays live on recycled memory (``rust/arrays/fresh.rs``): they must behave as
ordinary NumPy arrays, and a buffer is reused only once nothing refers to it any more."""

import gc
import pickle

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest

#: four large float32 arrays (2.4 MB each, above the 1 MiB the cache starts at)
N = 600_000


def weights(seed=0):
    rng = np.random.default_rng(seed)
    return {f"w{i}": rng.standard_normal(N, dtype=np.float32) for i in range(4)}


def owner(a):
    """What owns an array's memory: the end of its chain of bases."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def makers():
    """Each site that returns new large arrays: a function of a dict of large arrays that
    returns (gradfast's arrays, the reference's arrays)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1200, 500), dtype=np.float32)

    def regularization(w):
        return [gf.compute_regularization(w, 0.01, 0.02)[1], ref.compute_regularization(w, 0.01, 0.02)[1]]

    def clipper(w):
        return [m.AdaptiveClipper(1.0, 0.01).clip_gradients(w) for m in (gf, ref)]

    def layerwise(w):
        g = {k: v * np.float32(0.5) for k, v in w.items()}
        return [m.LayerAdaptiveLR(0.01).apply_gradients(w, g) for m in (gf, ref)]

    def batchnorm(_):
        out = []
        for m in (gf, ref):
            bn = m.BatchNorm(500, dtype=np.float32)
            y = bn.forward(x)
            out.append({"y": y, "gx": bn.backward(x)})
        return out

    def pruned(w):
        return [m.prune_network(w, 0.3) for m in (gf, ref)]

    def masks(w):
        return [m.magnitude_masks(w, 0.3) for m in (gf, ref)]

    def dropout(_):
        out = []
        for m in (gf, ref):
            d = m.Dropout(0.3, seed=5)
            out.append({"y": d.forward(x), "gx": d.backward(x)})
        return out

    return {f.__name__: f for f in (regularization, clipper, layerwise, batchnorm, dropout, pruned, masks)}


@pytest.mark.parametrize("site", sorted(makers()))
def test_large_results_are_ordinary_arrays_equal_to_the_reference(site):
    make = makers()[site]
    for _ in range(3):  # later rounds run on memory the earlier ones gave back
        got, want = make(weights())
        for k in want:
            a = got[k]
            assert type(a) is np.ndarray and a.dtype == want[k].dtype and a.shape == want[k].shape
            assert a.flags.c_contiguous and a.flags.aligned and a.flags.writeable
            assert type(owner(a)).__name__ == "Buffer"  # on the recycled memory under test
            np.testing.assert_allclose(a, want[k], rtol=2e-5, atol=1e-6)
            np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)), a)
        del got, want
        gc.collect()


def test_live_results_never_share_memory_and_freed_ones_are_reused_safely():
    w = weights()
    first = gf.compute_regularization(w, 0.01, 0.0)[1]
    second = gf.compute_regularization(w, 0.01, 0.0)[1]
    arrays = list(first.values()) + list(second.values())
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    kept = {k: v.copy() for k, v in second.items()}
    view = first["w0"][10:20]  # keeps first['w0']'s memory alive through its base
    expected_view = view.copy()
    del first, arrays
    gc.collect()
    third = gf.compute_regularization(weights(seed=3), 0.05, 0.0)[1]
    for k in kept:
        np.testing.assert_array_equal(second[k], kept[k])
        assert not np.shares_memory(third[k], second[k])
    np.testing.assert_array_equal(view, expected_view)
    assert not any(np.shares_memory(view, t) for t in third.values())
    want = ref.compute_regularization(weights(seed=3), 0.05, 0.0)[1]
    for k in want:
        np.testing.assert_allclose(third[k], want[k], rtol=2e-5, atol=1e-6)


def test_a_result_can_be_written_and_outlives_everything_else():
    grads = gf.compute_regularization(weights(), 0.0, 0.01)[1]
    g = grads.pop("w1")
    del grads
    gc.collect()
    g[:] = 7.0
    gf.compute_regularization(weights(), 0.0, 0.01)  # may reuse the three freed buffers
    assert np.all(g == 7.0)
