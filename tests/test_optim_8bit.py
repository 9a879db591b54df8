"""8-bit optimizer state (``state_dtype='8bit'``) on Adam, AdamW, MomentumOptimizer and Lion:
the Rust step against the reference step for step (bitwise: the same float32 arithmetic, the
same encoder), the state layout, thread counts bitwise, a resumed run bitwise, bad input
changing nothing."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_threads import restore_threads  # noqa: F401 (the fixture)

MAKERS = {
    "Adam": lambda m, h, **kw: m.Adam(h["lr"], weight_decay=h["wd"], maximize=h["flag"], state_dtype="8bit", **kw),
    "AdamW": lambda m, h, **kw: m.AdamW(h["lr"], beta1=h["beta"], weight_decay=h["wd"], state_dtype="8bit", **kw),
    "Momentum": lambda m, h, **kw: m.MomentumOptimizer(
        h["lr"], h["beta"], nesterov=h["flag"], state_dtype="8bit", **kw
    ),
    "Lion": lambda m, h, **kw: m.Lion(h["lr"], beta1=h["beta"], weight_decay=h["wd"], state_dtype="8bit", **kw),
}
HYPER = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-5, 0.1),
        "beta": st.floats(0.0, 0.99),
        "wd": st.sampled_from([0.0, 0.01, 0.5]),
        "flag": st.booleans(),
    }
)
# sizes on both sides of the 4,096-element threshold, with and without a partial last block
SHAPES = st.lists(st.sampled_from([(7,), (64, 63), (4096,), (4097,), (33, 300), (2, 5000)]), min_size=1, max_size=3)


def _problem(shapes, steps, seed):
    rng = np.random.default_rng(seed)
    params = {f"k{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    grads = []
    for _ in range(steps):
        g = {
            k: (rng.standard_normal(p.shape) * rng.choice([1e-4, 1.0, 30.0])).astype(np.float32)
            for k, p in params.items()
        }
        grads.append(g)
    return params, grads


def _run(make, m, params, grads):
    opt = make(m)
    p = {k: a.copy() for k, a in params.items()}
    for g in grads:
        opt.update(p, g)
    return opt, p


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(MAKERS)), HYPER, SHAPES, st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_rust_matches_reference_bitwise(name, hyper, shapes, steps, seed):
    params, grads = _problem(shapes, steps, seed)
    (o1, p1), (o2, p2) = (_run(lambda m: MAKERS[name](m, hyper), m, params, grads) for m in (gf, ref))
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])
        assert o1.state[k].keys() == o2.state[k].keys()
        for s, a in o1.state[k].items():
            np.testing.assert_array_equal(a, o2.state[k][s])
            assert a.dtype == o2.state[k][s].dtype


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(MAKERS)), HYPER, st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_groups_rust_matches_reference_bitwise_and_each_group_its_own(name, hyper, steps, seed):
    """Parameter groups with 8-bit state: the kernel runs once per group with that group's
    settings, the same bits as the reference; a group's keys move as an optimizer built with
    the group's settings moves them."""
    params, grads = _problem([(64, 64), (4100,), (33, 300)], steps, seed)
    groups = [{"keys": ["k1"], "lr_scale": 0.5}]

    (o1, p1), (o2, p2) = (_run(lambda m: MAKERS[name](m, hyper, groups=groups), m, params, grads) for m in (gf, ref))
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])
        for s, a in o1.state[k].items():
            np.testing.assert_array_equal(a, o2.state[k][s])
    alone = MAKERS[name](gf, {**hyper, "lr": hyper["lr"] * 0.5})
    p = {"k1": params["k1"].copy()}
    for g in grads:
        alone.update(p, {"k1": g["k1"]})
    np.testing.assert_array_equal(p["k1"], p1["k1"])


@pytest.mark.parametrize("m", [gf, ref])
def test_layout_codes_and_maxima(m):
    opt = m.Adam(1e-3, state_dtype="8bit")
    params = {"big": np.ones((3, 2000), np.float32), "small": np.ones(4095, np.float32)}
    opt.update(params, {k: np.full(p.shape, 0.5, np.float32) for k, p in params.items()})
    big, small = opt.state["big"], opt.state["small"]
    assert {s: (a.dtype, a.shape) for s, a in big.items()} == {
        "exp_avg": (np.uint8, (3, 2000)),
        "exp_avg_absmax": (np.float32, (24,)),  # 6000 values: 23 whole blocks of 256 and one of 112
        "exp_avg_sq": (np.uint8, (3, 2000)),
        "exp_avg_sq_absmax": (np.float32, (24,)),
    }
    assert {s: a.dtype for s, a in small.items()} == {"exp_avg": np.float32, "exp_avg_sq": np.float32}
    # every moment equals its block maximum, which both maps hold exactly (code 255 is 1.0)
    np.testing.assert_array_equal(big["exp_avg"], 255)
    np.testing.assert_array_equal(big["exp_avg_absmax"], np.float32(0.1) * np.float32(0.5))
    assert opt.state_dtype == "8bit"


@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_one_thread_equals_many_threads_bitwise(name):
    hyper = {"lr": 1e-3, "beta": 0.9, "wd": 0.01, "flag": False}
    params, grads = _problem([(400_000,), (300, 70), (100,)], 3, 0)
    runs = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        opt, p = _run(lambda m: MAKERS[name](m, hyper), gf, params, grads)
        runs.append((p, opt.state))
    for p, state in runs[1:]:
        for k in params:
            np.testing.assert_array_equal(p[k], runs[0][0][k])
            for s, a in state[k].items():
                np.testing.assert_array_equal(a, runs[0][1][k][s])


@pytest.mark.parametrize("m", [gf, ref])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_resume_from_state_dict_is_bitwise(m, name):
    hyper = {"lr": 1e-2, "beta": 0.9, "wd": 0.0, "flag": False}
    params, grads = _problem([(5000,), (10,)], 6, 1)
    whole, p_whole = _run(lambda mm: MAKERS[name](mm, hyper), m, params, grads)
    first, p = _run(lambda mm: MAKERS[name](mm, hyper), m, params, grads[:3])
    d = first.state_dict()
    assert d["state"]["k0"][next(iter(first.slots))].dtype == np.uint8
    resumed = MAKERS[name](m, hyper)
    resumed.load_state_dict(d)
    for g in grads[3:]:
        resumed.update(p, g)
    for k in params:
        np.testing.assert_array_equal(p[k], p_whole[k])
        for s, a in resumed.state[k].items():
            np.testing.assert_array_equal(a, whole.state[k][s])


@pytest.mark.parametrize("m", [gf, ref])
def test_bad_input_changes_nothing(m):
    p64 = {"w": np.ones(5000)}
    g64 = {"w": np.ones(5000)}
    opt = m.Adam(state_dtype="8bit")
    with pytest.raises(TypeError, match=r"params\['w'\] must have dtype float32 with state_dtype='8bit'"):
        opt.update(p64, g64)
    assert opt.state == {} and opt.step == 0
    np.testing.assert_array_equal(p64["w"], 1.0)
    with pytest.raises(ValueError, match="amsgrad must be False with state_dtype='8bit'"):
        m.Adam(amsgrad=True, state_dtype="8bit").update(
            {"w": np.ones(5000, np.float32)}, {"w": np.ones(5000, np.float32)}
        )
    # a state whose maxima have the wrong shape is refused before anything is written
    params = {"w": np.ones(5000, np.float32)}
    opt.update(params, {"w": np.ones(5000, np.float32)})
    before = params["w"].copy(), {s: a.copy() for s, a in opt.state["w"].items()}
    opt.state["w"]["exp_avg_absmax"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"state\['w'\]\['exp_avg_absmax'\] must have shape \(20,\)"):
        opt.update(params, {"w": np.ones(5000, np.float32)})
    np.testing.assert_array_equal(params["w"], before[0])
    np.testing.assert_array_equal(opt.state["w"]["exp_avg"], before[1]["exp_avg"])
    assert opt.step == 1
    with pytest.raises(ValueError, match="state_dtype must be None, 'bfloat16' or '8bit'"):
        m.Adam(state_dtype="4bit")
    with pytest.raises(ValueError, match="state_dtype must be None or 'bfloat16'"):
        m.RAdam(state_dtype="8bit")
