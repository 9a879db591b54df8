"""torch's split of norm clipping (``get_total_norm``, ``clip_grads_with_norm``) and
``clip_grad_value``: Rust against the reference, both against torch, and the split against
``clip_grad_norm`` in one call (the same kernels: the same bits)."""

from __future__ import annotations

import math

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

NORMS = [1.0, 2.0, 3.5, math.inf]


@st.composite
def grad_dicts(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shapes = draw(st.lists(st.sampled_from([(), (1,), (7,), (3, 5), (2, 3, 4), (0,), (300,)]), min_size=1, max_size=4))
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    return {f"g{i}": np.array(rng.standard_normal(s) * scale, dtype=dtype) for i, s in enumerate(shapes)}


def _copy(d):
    return {k: v.copy() for k, v in d.items()}


def _torch(d):
    return [torch.from_numpy(v.copy()) for v in d.values()]


def _holders(tensors):
    """Parameters whose ``.grad`` are ``tensors``: what torch's in-place clipping functions take."""
    params = [torch.nn.Parameter(torch.zeros_like(t)) for t in tensors]
    for p, t in zip(params, tensors):
        p.grad = t
    return params


def _torch_norm(tensors, p):
    """torch's ``get_total_norm``, without the empty tensors its inf-norm refuses (they add 0)."""
    return torch.nn.utils.get_total_norm([t for t in tensors if t.numel()], p)


@given(grad_dicts(), st.sampled_from(NORMS))
def test_total_norm_is_clip_grad_norms_and_torchs(grads, p):
    dtype = next(iter(grads.values())).dtype
    totals = {}
    for name, impl in (("gradfast", gf), ("reference", ref)):
        total = impl.get_total_norm(grads, p)
        assert isinstance(total, float)
        assert total == impl.clip_grad_norm(_copy(grads), 1.0, p)  # the same norm, bit for bit
        totals[name] = total
    np.testing.assert_allclose(totals["gradfast"], totals["reference"], **TOL[dtype])
    peer = float(_torch_norm(_torch(grads), p))
    np.testing.assert_allclose(totals["gradfast"], peer, **TOL[dtype])


@given(grad_dicts(), st.sampled_from(NORMS), st.sampled_from([0.0, 0.1, 1.0, 1e6]))
def test_split_clipping_is_clip_grad_norm_in_two_calls(grads, p, max_norm):
    dtype = next(iter(grads.values())).dtype
    out = {}
    for name, impl in (("gradfast", gf), ("reference", ref)):
        whole, split = _copy(grads), _copy(grads)
        impl.clip_grad_norm(whole, max_norm, p)
        assert impl.clip_grads_with_norm(split, max_norm, impl.get_total_norm(split, p)) is split
        for k in grads:
            np.testing.assert_array_equal(split[k], whole[k])
        out[name] = split
    t = _torch(grads)
    torch.nn.utils.clip_grads_with_norm_(_holders(t), max_norm, _torch_norm(t, p))
    for k, tk in zip(grads, t):
        np.testing.assert_allclose(out["gradfast"][k], out["reference"][k], **TOL[dtype])
        np.testing.assert_allclose(out["gradfast"][k], tk.numpy(), **TOL[dtype])


@given(grad_dicts(), st.sampled_from([0.0, 1e-3, 0.5, 2.0]))
def test_clip_grad_value_is_torchs_exactly(grads, clip_value):
    results = []
    for impl in (gf, ref):
        g = _copy(grads)
        assert impl.clip_grad_value(g, clip_value) is g
        results.append(g)
    t = _torch(grads)
    torch.nn.utils.clip_grad_value_(_holders(t), clip_value)
    for k, tk in zip(grads, t):
        np.testing.assert_array_equal(results[0][k], results[1][k])
        np.testing.assert_array_equal(results[0][k], tk.numpy())


def test_clip_grad_value_keeps_nan_and_signed_zero(impl):
    g = {"a": np.array([np.nan, -0.0, 3.0, -3.0, 0.25], dtype=np.float32)}
    impl.clip_grad_value(g, 1.0)
    assert np.isnan(g["a"][0]) and np.signbit(g["a"][1])
    np.testing.assert_array_equal(g["a"][2:], [1.0, -1.0, 0.25])


def test_nan_total_norm_spreads_as_torch(impl):
    g = {"a": np.ones(4)}
    impl.clip_grads_with_norm(g, 1.0, float("nan"))
    assert np.isnan(g["a"]).all()
    h = {"a": np.ones(4)}
    impl.clip_grads_with_norm(h, 1.0, math.inf)
    np.testing.assert_array_equal(h["a"], 0.0)


def test_empty_dicts(impl):
    assert impl.get_total_norm({}) == 0.0
    assert impl.clip_grads_with_norm({}, 1.0, 3.0) == {}
    assert impl.clip_grad_value({}, 1.0) == {}


def test_get_total_norm_only_reads(impl):
    base = np.arange(12.0).reshape(3, 4)
    view = base[:, ::2]  # not contiguous
    view.flags.writeable = False
    assert impl.get_total_norm({"v": view}) == pytest.approx(math.sqrt(float((view**2).sum())), rel=1e-15)


def test_error_if_nonfinite(impl):
    g = {"a": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match="get_total_norm: gradients must have a finite total norm"):
        impl.get_total_norm(g, error_if_nonfinite=True)
    assert impl.get_total_norm(g) == math.inf


BAD = [
    ("value", {"a": np.ones(3), "b": np.ones(3, np.float32)}, TypeError, "gradients"),
    ("with_norm", {"a": np.ones(3), "b": np.ones(3, np.float32)}, TypeError, "gradients"),
    ("total", {"a": np.ones(3), "b": np.ones(3, np.float32)}, TypeError, "gradients"),
    ("value", {"a": np.ones(3), "b": np.ones(3, np.int64)}, TypeError, "gradients\\['b'\\]"),
    ("value", {"a": np.ones(3), "b": np.ones((3, 2))[:, 0]}, ValueError, "contiguous"),
    ("with_norm", {"a": np.ones(3), "b": np.ones((3, 2))[:, 0]}, ValueError, "contiguous"),
]


@pytest.mark.parametrize(("which", "grads", "error", "words"), BAD)
def test_bad_gradients_change_nothing(impl, which, grads, error, words):
    before = _copy(grads)
    call = {
        "value": lambda: impl.clip_grad_value(grads, 0.5),
        "with_norm": lambda: impl.clip_grads_with_norm(grads, 0.5, 10.0),
        "total": lambda: impl.get_total_norm(grads),
    }[which]
    with pytest.raises(error, match=words):
        call()
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_read_only_and_aliased_gradients_are_refused(impl):
    a = np.full(4, 5.0)
    b = np.full(4, 5.0)
    b.flags.writeable = False
    for call in (lambda d: impl.clip_grad_value(d, 1.0), lambda d: impl.clip_grads_with_norm(d, 1.0, 10.0)):
        with pytest.raises(ValueError, match="writeable"):
            call({"a": a, "b": b})
        with pytest.raises(ValueError, match="gradients"):
            call({"a": a, "a2": a})
        np.testing.assert_array_equal(a, 5.0)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda m, g: m.clip_grad_value(g, -1.0), ValueError, "clip_grad_value: clip_value"),
        (lambda m, g: m.clip_grad_value(g, math.nan), ValueError, "clip_grad_value: clip_value"),
        (lambda m, g: m.clip_grad_value(g, "1"), TypeError, "clip_grad_value: clip_value"),
        (lambda m, g: m.clip_grads_with_norm(g, -1.0, 2.0), ValueError, "clip_grads_with_norm: max_norm"),
        (lambda m, g: m.clip_grads_with_norm(g, 1.0, "2"), TypeError, "clip_grads_with_norm: total_norm"),
        (lambda m, g: m.clip_grads_with_norm(g, 1.0, True), TypeError, "clip_grads_with_norm: total_norm"),
        (lambda m, g: m.get_total_norm(g, 0.0), ValueError, "get_total_norm: norm_type"),
        (lambda m, g: m.get_total_norm(g, error_if_nonfinite=1), TypeError, "get_total_norm: error_if_nonfinite"),
    ],
)
def test_bad_arguments_change_nothing(impl, call, error, words):
    g = {"a": np.full(3, 4.0)}
    with pytest.raises(error, match=words):
        call(impl, g)
    np.testing.assert_array_equal(g["a"], 4.0)


def test_bitwise_for_any_thread_count():
    rng = np.random.default_rng(3)
    grads = {f"w{i}": rng.standard_normal(400_000).astype(np.float32) for i in range(3)}  # 4.8 MB
    previous = gf.get_num_threads()
    results = []
    try:
        for n in (1, 2, 4):
            gf.set_num_threads(n)
            split, value = _copy(grads), _copy(grads)
            total = gf.get_total_norm(split)
            gf.clip_grads_with_norm(split, 1.0, total)
            gf.clip_grad_value(value, 0.5)
            results.append((total, split, value, gf.get_total_norm(grads, 3.0), gf.get_total_norm(grads, "inf")))
    finally:
        gf.set_num_threads(previous)
    first = results[0]
    for r in results[1:]:
        assert r[0] == first[0] and r[3] == first[3] and r[4] == first[4]
        for k in grads:
            np.testing.assert_array_equal(r[1][k], first[1][k])
            np.testing.assert_array_equal(r[2][k], first[2][k])
