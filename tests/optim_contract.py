"""The checks every Rust-backed optimizer passes against its reference twin: the same bits
step for step, for any thread count, after a resume, and the same refusal of bad input."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import strategies as st

SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (33,), (1000,)])


@st.composite
def problems(draw, dtypes=(np.float32, np.float64)):
    """A dict of params and a list of gradient dicts, one per step."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=4))
    steps = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(steps)]
    return params, grads


def run(opt, params, grads, rates=None):
    """``params`` after one update per gradient dict (``learning_rate`` set before each from
    ``rates`` when given), and the optimizer."""
    params = {k: p.copy() for k, p in params.items()}
    for i, g in enumerate(grads):
        if rates is not None:
            opt.learning_rate = rates[i]
        opt.update(params, g)
    return params, opt


def assert_same_dicts(a, b):
    """Equal state dicts (or param dicts): the same keys, numbers and array bits."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same_dicts(a[k], b[k])
        elif isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype
            np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))
        else:
            assert a[k] == b[k], k


def assert_runs_agree(make, problem, rates=None):
    """``make(module)`` from gradfast and from the reference, run over ``problem``: the same
    params and ``state_dict()`` bitwise."""
    params, grads = problem
    p_gf, o_gf = run(make(gf), params, grads, rates)
    p_ref, o_ref = run(make(ref), params, grads, rates)
    assert type(o_gf) is not type(o_ref)
    assert_same_dicts(p_gf, p_ref)
    assert_same_dicts(o_gf.state_dict(), o_ref.state_dict())


def assert_threads_agree(make, dtype=np.float32):
    """Three steps over a dict above the threaded-path threshold give the same bits on 1, 2
    and 4 threads, and those of the reference."""
    rng = np.random.default_rng(4)
    params = {"a": rng.standard_normal(300_000).astype(dtype), "b": rng.standard_normal((7, 9)).astype(dtype)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(3)]
    old = gf.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 4):
            gf.set_num_threads(n)
            runs.append(run(make(gf), params, grads)[0])
    finally:
        gf.set_num_threads(old)
    for r in runs[1:]:
        assert_same_dicts(runs[0], r)
    assert_same_dicts(runs[0], run(make(ref), params, grads)[0])


def bad_calls(dtype=np.float64):
    """(params, gradients, error, message) of calls every optimizer refuses, after a first
    step over ``{'w': (3, 2), 'b': (2,)}``."""
    w, b = np.ones((3, 2), dtype), np.ones(2, dtype)
    good = {"w": w, "b": b}
    other = np.float32 if dtype == np.float64 else np.float64
    ro = np.ones((3, 2), dtype)
    ro.flags.writeable = False
    return [
        ({"w": w, "b": b}, {"w": np.ones((3, 2), other), "b": b}, TypeError, r"gradients\['w'\] must have dtype"),
        ({"w": w, "b": b}, {"w": np.ones((2, 3), dtype), "b": b}, ValueError, r"gradients\['w'\] must have shape"),
        ({"w": w, "b": b}, {"w": w.copy()}, ValueError, "gradients"),
        ({"w": ro, "b": b}, good, ValueError, r"params\['w'\]"),
        ({"w": np.ones((3, 3), dtype), "b": b}, {"w": np.ones((3, 3), dtype), "b": b.copy()}, ValueError, r"\['w'\]"),
    ]


def assert_bad_input_changes_nothing(make):
    """Both implementations refuse each bad call with the same error class, naming the culprit,
    and change no params, state or step count."""
    for params, grads, error, match in bad_calls():
        for impl in (gf, ref):
            opt = make(impl)
            opt.update({"w": np.full((3, 2), 0.5), "b": np.full(2, 0.5)}, {"w": np.ones((3, 2)), "b": np.ones(2)})
            before = opt.state_dict()
            p = {k: a.copy() if a.flags.writeable else a for k, a in params.items()}
            snapshot = {k: a.copy() for k, a in p.items()}
            with pytest.raises(error, match=match):
                opt.update(p, grads)
            assert_same_dicts(opt.state_dict(), before)
            assert_same_dicts(p, snapshot)


def assert_resumes_bitwise(make, dtype=np.float32):
    """A run saved after 3 of 7 steps and loaded into a fresh optimizer (another learning
    rate) continues bitwise as the one that never stopped."""
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()} for _ in range(7)]
    for impl in (gf, ref):
        p1, straight = run(make(impl), params, grads)
        first, p2 = make(impl), {k: v.copy() for k, v in params.items()}
        for g in grads[:3]:
            first.update(p2, g)
        saved = first.state_dict()
        resumed = make(impl)
        resumed.learning_rate = 0.5
        resumed.load_state_dict(saved)
        assert resumed.learning_rate == first.learning_rate
        for g in grads[3:]:
            resumed.update(p2, g)
        assert_same_dicts(p1, p2)
        assert_same_dicts(straight.state_dict(), resumed.state_dict())
