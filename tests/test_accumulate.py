"""``Accumulate``: Rust against the reference (bitwise), the mean it applies, resume, bad input,
threads; ``DataParallel`` sums with the same kernel. Against optax.MultiSteps:
tests/reference/test_accumulate_peer.py."""

from __future__ import annotations

import gradfast as gf
import gradfast.average
import gradfast.distributed
import gradfast.reference as ref
import gradfast.reference.average
import gradfast.reference.distributed
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SHAPES = {"w": (5, 3), "b": (5,), "s": ()}


def _dicts(dtype, seed, n):
    rng = np.random.default_rng(seed)
    draw = lambda: {k: np.array(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}  # noqa: E731
    return draw(), [draw() for _ in range(n)]


def _run(module, steps, params, grads, make=lambda m: m.Adam(1e-2)):
    acc = module.Accumulate(make(module), steps)
    params = {k: v.copy() for k, v in params.items()}
    applied = [acc.update(params, g) for g in grads]
    return params, applied, acc


@settings(deadline=None)
@given(st.sampled_from([np.float32, np.float64]), st.integers(1, 4), st.integers(0, 9), st.integers(0, 2**32 - 1))
def test_rust_is_the_reference_bitwise(dtype, steps, calls, seed):
    params, grads = _dicts(dtype, seed, calls)
    p1, a1, acc1 = _run(gf, steps, params, grads)
    p2, a2, acc2 = _run(ref, steps, params, grads)
    assert a1 == a2 == [(i + 1) % steps == 0 for i in range(calls)]
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])
    d1, d2 = acc1.state_dict(), acc2.state_dict()
    assert d1["count"] == d2["count"] == calls % steps
    for k in d1["sums"]:
        np.testing.assert_array_equal(d1["sums"][k], d2["sums"][k])


@pytest.mark.parametrize("impl", [gf, ref], ids=["rust", "reference"])
def test_applies_the_mean_of_the_cycle(impl):
    # plain SGD (no momentum): one step by learning_rate times the mean gradient
    p = {"w": np.array([1.0, 2.0])}
    acc = impl.Accumulate(impl.MomentumOptimizer(0.5, momentum=0.0), 3)
    assert acc.update(p, {"w": np.array([1.0, 4.0])}) is False
    assert acc.update(p, {"w": np.array([2.0, -1.0])}) is False
    np.testing.assert_array_equal(p["w"], [1.0, 2.0])  # untouched inside a cycle
    assert acc.count == 2
    assert acc.update(p, {"w": np.array([6.0, 0.5])}) is True
    np.testing.assert_array_equal(p["w"], [1.0 - 0.5 * 3.0, 2.0 - 0.5 * 3.5 / 3])
    assert acc.count == 0 and acc.optimizer.step == 1


@pytest.mark.parametrize("impl", [gf, ref], ids=["rust", "reference"])
def test_resume_is_bitwise(impl):
    params, grads = _dicts(np.float64, 3, 7)
    full, *_ = _run(impl, 3, params, grads)
    half, _, first = _run(impl, 3, params, grads[:4])  # one cycle and one call into the next
    d = first.state_dict()
    assert d["count"] == 1 and d["steps"] == 3 and d["optimizer"]["step"] == 1
    np.testing.assert_array_equal(d["sums"]["w"], grads[3]["w"])
    second = impl.Accumulate(impl.Adam(1e-2), 3)
    second.load_state_dict(d)
    for g in grads[4:]:
        second.update(half, g)
    for k in params:
        np.testing.assert_array_equal(half[k], full[k])


@pytest.mark.parametrize("impl", [gf, ref], ids=["rust", "reference"])
@pytest.mark.parametrize(
    ("spoil", "error", "words"),
    [
        (lambda d: d.update(steps=2), ValueError, r"d\['steps'\] must be 3"),
        (lambda d: d.update(count=3), ValueError, r"d\['count'\] must be"),
        (lambda d: d.update(sums={}), ValueError, "partial sums exactly when count > 0"),
        (lambda d: d["sums"].update(b=d["sums"]["b"].astype(np.float32)), TypeError, r"d\['sums'\]\['b'\]"),
        (lambda d: d.pop("optimizer"), ValueError, "keys 'steps', 'count', 'sums', 'optimizer'"),
        (lambda d: d["optimizer"].update(step=-1), ValueError, r"d\['step'\]"),
    ],
)
def test_bad_state_changes_nothing(impl, spoil, error, words):
    params, grads = _dicts(np.float64, 5, 4)
    _, _, acc = _run(impl, 3, params, grads)
    d = acc.state_dict()
    spoil(d)
    before = acc.state_dict()
    with pytest.raises(error, match=words):
        acc.load_state_dict(d)
    after = acc.state_dict()
    assert after["count"] == before["count"] and after["optimizer"]["step"] == before["optimizer"]["step"]
    np.testing.assert_array_equal(after["sums"]["w"], before["sums"]["w"])


@pytest.mark.parametrize("impl", [gf, ref], ids=["rust", "reference"])
@pytest.mark.parametrize("last", [False, True], ids=["inside", "last"])
def test_bad_update_changes_nothing(impl, last):
    params, grads = _dicts(np.float64, 6, 2)
    acc = impl.Accumulate(impl.Adam(1e-2), 3 if not last else 2)
    acc.update(params, grads[0])
    before = acc.state_dict()
    bad = [
        ({**grads[1], "b": np.ones(4)}, ValueError, r"gradients\['b'\]"),
        ({k: v for k, v in grads[1].items() if k != "s"}, ValueError, "gradients"),
        ({**grads[1], "w": grads[1]["w"].astype(np.float32)}, (TypeError, ValueError), r"gradients\['[wb]'\]"),
    ]
    if last:  # params are checked against the gradients before the sums are written
        bad.append((grads[1], ValueError, r"gradients\['b'\] must have shape \(4,\)"))
    for g, error, words in bad:
        p = {**params, "b": np.ones(4)} if g is grads[1] else params
        with pytest.raises(error, match=words):
            acc.update(p, g)
        d = acc.state_dict()
        assert d["count"] == 1 and d["optimizer"]["step"] == 0
        np.testing.assert_array_equal(d["sums"]["w"], before["sums"]["w"])


@pytest.mark.parametrize("impl", [gf, ref], ids=["rust", "reference"])
def test_bad_arguments(impl):
    with pytest.raises(ValueError, match="Accumulate: steps must be"):
        impl.Accumulate(impl.Adam(), 0)
    with pytest.raises(TypeError, match="Accumulate: optimizer must have an update"):
        impl.Accumulate(object(), 2)


def test_bitwise_for_any_thread_count():
    rng = np.random.default_rng(1)
    grads = [{"a": rng.standard_normal(3_000_000).astype(np.float32)} for _ in range(3)]
    old = gf.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 4):
            gf.set_num_threads(n)
            sums = {"a": np.empty(3_000_000, np.float32)}
            for i, g in enumerate(grads):
                gradfast.average.accumulate("t", sums, g, i == 0, 3.0 if i == 2 else 1.0)
            runs.append(sums["a"])
    finally:
        gf.set_num_threads(old)
    want = {"a": np.empty(3_000_000, np.float32)}
    for i, g in enumerate(grads):
        gradfast.reference.average.accumulate("t", want, g, i == 0, 3.0 if i == 2 else 1.0)
    for r in runs:
        np.testing.assert_array_equal(r, want["a"])


@pytest.mark.parametrize("impl", [gradfast.average, gradfast.reference.average], ids=["rust", "reference"])
def test_the_sum_kernel_refuses_bad_input_writing_nothing(impl):
    sums = {"a": np.ones(3), "b": np.ones(2)}
    with pytest.raises(ValueError, match=r"gradients\['b'\]"):
        impl.accumulate("f", sums, {"a": np.ones(3), "b": np.ones(3)}, False, 1.0)
    ro = np.ones(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"sums\['b'\]"):
        impl.accumulate("f", {"a": sums["a"], "b": ro}, {"a": np.ones(3), "b": np.ones(2)}, False, 1.0)
    np.testing.assert_array_equal(sums["a"], np.ones(3))


def test_data_parallel_sums_with_the_same_kernel():
    assert gradfast.distributed.DataParallel._accumulate is gradfast.average.accumulate
    assert gradfast.reference.distributed.DataParallel._accumulate is gradfast.reference.average.accumulate
