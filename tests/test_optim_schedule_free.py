"""gradfast.ScheduleFreeAdamW (Rust) against the reference: step for step with train/eval
switches between steps (float32 and float64, shapes, hyper-parameters, a changing learning
rate), thread counts bitwise, bad input and eval-mode updates changing nothing, a resumed run
bitwise (in either mode)."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optim_contract import (
    assert_bad_input_changes_nothing,
    assert_resumes_bitwise,
    assert_same_dicts,
    assert_threads_agree,
    problems,
)
from test_threads import restore_threads  # noqa: F401 (the fixture)

HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "beta1": st.floats(0.05, 0.99),
    "beta2": st.floats(0.0, 0.999),
    "epsilon": st.floats(1e-10, 1e-3),
    "weight_decay": st.sampled_from([0.0, 0.01, 0.2]),
    "warmup_steps": st.integers(0, 10),
    "r": st.floats(0.0, 2.0),
    "weight_lr_power": st.floats(0.0, 2.0),
}


def run(opt, params, grads, rates=None, evaluate=()):
    """``params`` after one update per gradient dict (``learning_rate`` set before each from
    ``rates``; an ``eval`` and ``train`` after step ``i`` when ``evaluate[i]``), then ``eval``."""
    params = {k: p.copy() for k, p in params.items()}
    for i, g in enumerate(grads):
        if rates is not None:
            opt.learning_rate = rates[i]
        opt.update(params, g)
        if i < len(evaluate) and evaluate[i]:
            opt.eval(params)
            opt.train(params)
    assert opt.eval(params) is params
    return params, opt


@given(
    problems(),
    st.fixed_dictionaries(HYPER),
    st.lists(st.floats(0.0, 0.1), min_size=8, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_matches_reference_with_mode_switches(problem, hyper, rates, evaluate):
    params, grads = problem
    p_gf, o_gf = run(gf.ScheduleFreeAdamW(**hyper), params, grads, rates, evaluate)
    p_ref, o_ref = run(ref.ScheduleFreeAdamW(**hyper), params, grads, rates, evaluate)
    assert_same_dicts(p_gf, p_ref)
    assert_same_dicts(o_gf.state_dict(), o_ref.state_dict())
    assert o_gf.state_dict()["train_mode"] is False


def test_one_thread_equals_many_threads():
    assert_threads_agree(lambda m: m.ScheduleFreeAdamW(1e-2, weight_decay=0.1, warmup_steps=2, r=0.5))


@pytest.mark.usefixtures("restore_threads")
def test_switches_are_the_same_on_any_thread_count():
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(300_000).astype(np.float32), "b": rng.standard_normal((7, 9))}
    params["b"] = params["b"].astype(np.float32)
    grads = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(2)]
    runs = []
    for threads in (1, 2, 4):
        gf.set_num_threads(threads)
        runs.append(run(gf.ScheduleFreeAdamW(1e-2), params, grads, evaluate=[True, False])[0])
    for r in runs[1:]:
        assert_same_dicts(runs[0], r)
    assert_same_dicts(runs[0], run(ref.ScheduleFreeAdamW(1e-2), params, grads, evaluate=[True, False])[0])


def test_bad_input_changes_nothing():
    assert_bad_input_changes_nothing(lambda m: m.ScheduleFreeAdamW(1e-2, weight_decay=0.1))


def test_resumes_bitwise():
    assert_resumes_bitwise(lambda m: m.ScheduleFreeAdamW(1e-2, warmup_steps=2, r=1.0))


@pytest.mark.parametrize("impl", [gf, ref], ids=["gradfast", "reference"])
def test_resumes_bitwise_from_eval_mode(impl):
    rng = np.random.default_rng(5)
    grads = [{"w": rng.standard_normal((4, 3))} for _ in range(5)]
    a, pa = impl.ScheduleFreeAdamW(1e-2, weight_decay=0.1), {"w": rng.standard_normal((4, 3))}
    for g in grads[:2]:
        a.update(pa, g)
    a.eval(pa)
    b, pb = impl.ScheduleFreeAdamW(), {"w": pa["w"].copy()}  # the saved (averaged) weights
    b.load_state_dict(a.state_dict())
    assert not b.train_mode and b.lr_max == a.lr_max and b.weight_sum == a.weight_sum
    for opt, p in ((a, pa), (b, pb)):
        opt.train(p)
        for g in grads[2:]:
            opt.update(p, g)
    assert_same_dicts(pa, pb)
    assert_same_dicts(a.state_dict(), b.state_dict())


def test_update_in_eval_mode_is_refused_the_same_way():
    msg = r"ScheduleFreeAdamW.update: the optimizer must be in train mode .*got eval mode"
    for impl in (gf, ref):
        opt = impl.ScheduleFreeAdamW(0.1)
        p, g = {"w": np.ones(3)}, {"w": np.full(3, 0.5)}
        opt.update(p, g)
        opt.eval(p)
        before, saved = p["w"].copy(), opt.state_dict()
        with pytest.raises(ValueError, match=msg):
            opt.update(p, g)
        np.testing.assert_array_equal(p["w"], before)
        assert_same_dicts(opt.state_dict(), saved)
        fresh = impl.ScheduleFreeAdamW()  # no state yet: eval only records the mode
        fresh.eval(p)
        with pytest.raises(ValueError, match=msg):
            fresh.update(p, g)
        assert fresh.step == 0 and not fresh.state
        np.testing.assert_array_equal(p["w"], before)


def test_switches_are_idempotent_and_start_in_train_mode():
    for impl in (gf, ref):
        opt = impl.ScheduleFreeAdamW(0.1)
        assert opt.train_mode
        p = {"w": np.linspace(-1.0, 1.0, 5)}
        opt.update(p, {"w": np.ones(5)})  # the first step leaves y = z: a second one parts them
        opt.update(p, {"w": np.linspace(2.0, -1.0, 5)})
        y = p["w"].copy()
        opt.train(p)
        np.testing.assert_array_equal(p["w"], y)
        opt.eval(p)
        x = p["w"].copy()
        assert not np.array_equal(x, y)
        opt.eval(p)
        np.testing.assert_array_equal(p["w"], x)
        assert opt.state_dict()["train_mode"] is False
        opt.train(p)
        np.testing.assert_allclose(p["w"], y, rtol=1e-14)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"w": np.ones((2, 2))}, ValueError, r"ScheduleFreeAdamW.eval: params\['w'\] must have shape \(3,\)"),
        ({"w": np.ones(3, np.float32)}, ValueError, r"ScheduleFreeAdamW.eval: params\['w'\] must have shape"),
        ({"v": np.ones(3)}, ValueError, r"ScheduleFreeAdamW.eval: params must have key 'w'"),
    ],
)
def test_bad_switch_changes_nothing(params, error, match):
    for impl in (gf, ref):
        opt = impl.ScheduleFreeAdamW(0.1)
        opt.update({"w": np.ones(3)}, {"w": np.ones(3)})
        saved = opt.state_dict()
        p = {k: a.copy() for k, a in params.items()}
        with pytest.raises(error, match=match):
            opt.eval(p)
        assert_same_dicts(p, params)
        assert_same_dicts(opt.state_dict(), saved)


def test_learning_rate_is_settable_and_takes_effect():
    out = []
    for impl in (gf, ref):
        for later in (0.1, 0.01):
            opt, p = impl.ScheduleFreeAdamW(0.1), {"w": np.zeros(3)}
            opt.update(p, {"w": np.array([1.0, -1.0, 0.5])})
            opt.learning_rate = later
            opt.update(p, {"w": np.array([1.0, -1.0, 0.5])})
            assert opt.learning_rate == later
            out.append(p["w"])
    assert not np.array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], out[3])
