"""gradfast.Lion (Rust) against the reference Lion: step for step over dtypes, shapes and
hyper-parameters (float32 and float64, bfloat16 state), thread counts bitwise, bad input
changing nothing, a resumed run bitwise, a settable learning rate."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_optim import assert_runs_agree, problems
from test_threads import restore_threads  # noqa: F401 (the fixture)

LION_HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "beta1": st.floats(0.0, 1.0),
    "beta2": st.floats(0.0, 1.0),
    "weight_decay": st.floats(0.0, 1.0),
}


@given(problems(), st.fixed_dictionaries(LION_HYPER))
def test_lion_matches_reference(problem, hyper):
    assert_runs_agree(lambda m: m.Lion(**hyper), problem)


@given(problems(), st.fixed_dictionaries(LION_HYPER), st.booleans())
def test_bfloat16_state_and_params_match_reference(problem, hyper, bf16_params):
    params, grads = problem
    if next(iter(params.values())).dtype == np.float64:
        params = {k: p.astype(np.float32) for k, p in params.items()}
        grads = [{k: g.astype(np.float32) for k, g in gs.items()} for gs in grads]
    if bf16_params:
        params = {k: p.astype(ml_dtypes.bfloat16) for k, p in params.items()}
        grads = [{k: g.astype(ml_dtypes.bfloat16) for k, g in gs.items()} for gs in grads]
    out = {}
    for m in (gf, ref):
        opt = m.Lion(**hyper, state_dtype="bfloat16")
        p = {k: a.copy() for k, a in params.items()}
        for g in grads:
            opt.update(p, g)
        out[m] = (p, opt.state)
    for k in params:  # the same float32 arithmetic, rounded at the same points: bitwise
        np.testing.assert_array_equal(out[gf][0][k], out[ref][0][k])
        np.testing.assert_array_equal(out[gf][1][k]["exp_avg"], out[ref][1][k]["exp_avg"])
        assert out[gf][1][k]["exp_avg"].dtype == ml_dtypes.bfloat16


@pytest.mark.usefixtures("restore_threads")
def test_one_thread_equals_many_threads_bitwise():
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal(300_000).astype(np.float32), "b": rng.standard_normal((300, 70))}
    params["b"] = params["b"].astype(np.float32)
    grads = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(3)]
    runs = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        opt, p = gf.Lion(1e-2, weight_decay=0.1), {k: a.copy() for k, a in params.items()}
        for g in grads:
            opt.update(p, g)
        runs.append((p, opt.state))
    for p, state in runs[1:]:
        for k in params:
            np.testing.assert_array_equal(p[k], runs[0][0][k])
            np.testing.assert_array_equal(state[k]["exp_avg"], runs[0][1][k]["exp_avg"])


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ({"gradients": {"w": np.ones(4, np.float32)}}, ValueError, r"Lion.update: gradients\['w'\] must have shape"),
        ({"gradients": {"w": np.ones((2, 3))}}, TypeError, r"Lion.update: gradients\['w'\] must have dtype float32"),
        ({"gradients": {"v": np.ones((2, 3), np.float32)}}, ValueError, r"Lion.update: gradients must have key 'w'"),
    ],
)
def test_bad_input_changes_nothing(impl, bad, error, match):
    opt = impl.Lion(0.1)
    params = {"w": np.ones((2, 3), np.float32)}
    opt.update(params, {"w": np.full((2, 3), 0.5, np.float32)})
    before, state = params["w"].copy(), opt.state["w"]["exp_avg"].copy()
    with pytest.raises(error, match=match):
        opt.update(params, bad["gradients"])
    np.testing.assert_array_equal(params["w"], before)
    np.testing.assert_array_equal(opt.state["w"]["exp_avg"], state)
    assert opt.step == 1


def test_bad_hyperparameters_are_refused(impl):
    with pytest.raises(ValueError, match=r"Lion: beta1 must be a finite number in \[0.0, 1.0\], got 1.5"):
        impl.Lion(beta1=1.5)
    with pytest.raises(ValueError, match=r"Lion: weight_decay must be a finite number in \[0.0, inf\]"):
        impl.Lion(weight_decay=-1.0)


def test_resumed_run_is_bitwise_identical(impl):
    rng = np.random.default_rng(4)
    grads = [{"w": rng.standard_normal((5, 4))} for _ in range(6)]
    a, pa = impl.Lion(0.01, weight_decay=0.1), {"w": rng.standard_normal((5, 4))}
    pb = {"w": pa["w"].copy()}
    for g in grads[:3]:
        a.update(pa, g)
    b = impl.Lion()
    b.load_state_dict(a.state_dict())
    pb["w"][...] = pa["w"]
    for g in grads[3:]:
        a.update(pa, g)
        b.update(pb, g)
    np.testing.assert_array_equal(pa["w"], pb["w"])
    assert b.weight_decay == 0.1 and b.step == 6


def test_learning_rate_is_settable_and_takes_effect(impl):
    opt = impl.Lion(0.1)
    p = {"w": np.zeros(3)}
    opt.update(p, {"w": np.array([1.0, -1.0, 0.0])})
    np.testing.assert_array_equal(p["w"], [-0.1, 0.1, 0.0])
    opt.learning_rate = 0.5
    opt.update(p, {"w": np.array([1.0, -1.0, 0.0])})
    np.testing.assert_array_equal(p["w"], [-0.6, 0.6, 0.0])
