"""gradfast.Muon (Rust) against the reference over dtypes, matrix shapes (wide, tall, empty),
hyper-parameters and a changing learning rate: the momentum buffer bitwise, the parameters
within the float32 GEMM's rounding (another summation order than NumPy's) with
``ns_dtype='float32'``, within bfloat16's with torch's ``'bfloat16'``; thread counts bitwise;
every array 2-D or a ``ValueError`` naming it; bad input changing nothing; a resumed run
bitwise."""

from __future__ import annotations

import math

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optim_contract import assert_same_dicts, run
from test_threads import restore_threads  # noqa: F401 (the fixture)

MATRICES = st.sampled_from([(1, 1), (0, 3), (4, 4), (3, 7), (9, 2), (16, 12), (5, 33)])
HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "weight_decay": st.sampled_from([0.0, 0.1, 0.5]),
    "momentum": st.floats(0.0, 0.99),
    "nesterov": st.booleans(),
    "ns_coefficients": st.sampled_from([(3.4445, -4.775, 2.0315), (2.0, -1.5, 0.5)]),
    "epsilon": st.sampled_from([1e-7, 1e-3]),
    "ns_steps": st.integers(0, 6),
    "adjust_lr_fn": st.sampled_from([None, "original", "match_rms_adamw", "spectral_unclamped"]),
}


@st.composite
def matrix_problems(draw):
    """A dict of matrices and a list of gradient dicts, one per step."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(MATRICES, min_size=1, max_size=3))
    steps = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(steps)]
    return params, grads


def lr_ratio(shape):
    """The largest factor ``adjust_lr_fn`` puts on the learning rate of a matrix of ``shape``."""
    a, b = shape
    return max(math.sqrt(max(1, a / b)), 0.2 * math.sqrt(max(a, b)), math.sqrt(a / b)) if a * b else 0.0


def assert_close_runs(problem, hyper, ns_dtype, rates, atol):
    """Rust and reference over ``problem``: the momentum buffers bitwise (an element-wise lerp
    of the same gradients), the params within ``atol`` of one step's size per step (and the
    rounding of the params to their dtype)."""
    params, grads = problem
    p_gf, o_gf = run(gf.Muon(**hyper, ns_dtype=ns_dtype), params, grads, rates)
    p_ref, o_ref = run(ref.Muon(**hyper, ns_dtype=ns_dtype), params, grads, rates)
    s_gf, s_ref = o_gf.state_dict(), o_ref.state_dict()
    assert_same_dicts(s_gf["state"], s_ref["state"])
    assert s_gf["hyperparams"] == s_ref["hyperparams"] and s_gf["step"] == s_ref["step"] == len(grads)
    for k, p in p_gf.items():
        assert p.dtype == p_ref[k].dtype
        step = max(rates) * lr_ratio(p.shape)
        rounding = 4 * np.finfo(p.dtype).eps * max(float(np.abs(p_ref[k]).max(initial=0.0)), 1.0)
        np.testing.assert_allclose(p, p_ref[k], rtol=0, atol=atol * step * len(grads) + rounding, err_msg=k)


@given(matrix_problems(), st.fixed_dictionaries(HYPER), st.lists(st.floats(0.0, 0.1), min_size=5, max_size=5))
def test_float32_iteration_matches_reference(problem, hyper, rates):
    assert_close_runs(problem, hyper, "float32", rates, atol=1e-5)


@given(matrix_problems(), st.fixed_dictionaries(HYPER), st.lists(st.floats(0.0, 0.1), min_size=5, max_size=5))
def test_bfloat16_iteration_matches_reference_within_bfloat16(problem, hyper, rates):
    assert_close_runs(problem, hyper, "bfloat16", rates, atol=0.02)


@pytest.mark.parametrize("ns_dtype", ["bfloat16", "float32"])
def test_small_matrices_match_reference_bitwise(ns_dtype):
    # products of a few terms are summed in the same order by both GEMMs
    rng = np.random.default_rng(8)
    params = {"w": rng.standard_normal((2, 3)).astype(np.float32), "v": rng.standard_normal((5, 2)).astype(np.float32)}
    grads = [{k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()} for _ in range(3)]
    a = run(gf.Muon(0.05, ns_dtype=ns_dtype), params, grads)
    b = run(ref.Muon(0.05, ns_dtype=ns_dtype), params, grads)
    assert_same_dicts(a[0], b[0])
    assert_same_dicts(a[1].state_dict(), b[1].state_dict())


@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("ns_dtype", ["bfloat16", "float32"])
def test_one_thread_equals_many_threads_bitwise(ns_dtype):
    rng = np.random.default_rng(4)
    params = {
        "a": rng.standard_normal((256, 700)),
        "b": rng.standard_normal((600, 200)),
        "c": rng.standard_normal((5, 3)),
    }
    params = {k: p.astype(np.float32) for k, p in params.items()}
    grads = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(2)]
    runs = []
    for n in (1, 2, 4):
        gf.set_num_threads(n)
        p, opt = run(gf.Muon(0.02, ns_dtype=ns_dtype), params, grads)
        runs.append((p, opt.state_dict()))
    for p, s in runs[1:]:
        assert_same_dicts(runs[0][0], p)
        assert_same_dicts(runs[0][1], s)


def bad_calls():
    """(params, gradients, error, message) refused after a first step over ``{'w': (3, 2)}``."""
    w = np.ones((3, 2))
    ro = np.ones((3, 2))
    ro.flags.writeable = False
    return [
        ({"w": np.ones(2)}, {"w": np.ones(2)}, ValueError, r"params\['w'\] must be a 2-D array .*got shape \(2,\)"),
        ({"w": np.ones((3, 2, 1))}, {"w": np.ones((3, 2, 1))}, ValueError, r"params\['w'\] must be a 2-D array"),
        ({"w": w}, {"w": np.ones((3, 2), np.float32)}, TypeError, r"gradients\['w'\] must have dtype"),
        ({"w": w}, {"w": np.ones((2, 3))}, ValueError, r"gradients\['w'\] must have shape"),
        ({"w": w}, {"v": w.copy()}, ValueError, "gradients"),
        ({"w": ro}, {"w": w}, ValueError, r"params\['w'\]"),
        ({"w": np.ones((3, 3))}, {"w": np.ones((3, 3))}, ValueError, r"\['w'\]"),
    ]


@pytest.mark.parametrize(("params", "grads", "error", "match"), bad_calls())
def test_bad_input_changes_nothing(params, grads, error, match):
    for impl in (gf, ref):
        opt = impl.Muon(0.1)
        opt.update({"w": np.full((3, 2), 0.5)}, {"w": np.ones((3, 2))})
        before = opt.state_dict()
        p = {k: a.copy() if a.flags.writeable else a for k, a in params.items()}
        snapshot = {k: a.copy() for k, a in p.items()}
        with pytest.raises(error, match=match):
            opt.update(p, grads)
        assert_same_dicts(opt.state_dict(), before)
        assert_same_dicts(p, snapshot)


def test_a_first_step_with_a_vector_is_refused_naming_it():
    for impl in (gf, ref):
        opt, params = impl.Muon(), {"w": np.ones((3, 4)), "b": np.ones(4)}
        with pytest.raises(ValueError, match=r"Muon.update: params\['b'\] must be a 2-D array .*got shape \(4,\)"):
            opt.update(params, {k: np.ones_like(a) for k, a in params.items()})
        assert opt.step == 0 and not opt.state
        np.testing.assert_array_equal(params["w"], np.ones((3, 4)))


@pytest.mark.parametrize("ns_dtype", ["bfloat16", "float32"])
def test_resumes_bitwise(ns_dtype):
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(np.float32), "b": rng.standard_normal((3, 8)).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(6)]

    def make():
        return gf.Muon(0.02, adjust_lr_fn="match_rms_adamw", ns_dtype=ns_dtype)

    p1, straight = run(make(), params, grads)
    first, p2 = make(), {k: v.copy() for k, v in params.items()}
    for g in grads[:3]:
        first.update(p2, g)
    resumed = gf.Muon(0.5)
    resumed.load_state_dict(first.state_dict())
    assert resumed.adjust_lr_fn == "match_rms_adamw" and resumed.ns_dtype == ns_dtype
    for g in grads[3:]:
        resumed.update(p2, g)
    assert_same_dicts(p1, p2)
    assert_same_dicts(straight.state_dict(), resumed.state_dict())


def test_learning_rate_is_settable_and_takes_effect():
    out = []
    for later in (0.1, 0.01):
        opt, p = gf.Muon(0.1, weight_decay=0.0), {"w": np.zeros((3, 2))}
        g = {"w": np.arange(6.0).reshape(3, 2)}
        opt.update(p, g)
        opt.learning_rate = later
        before = p["w"].copy()
        opt.update(p, g)
        out.append(p["w"] - before)
    # the second step's size is proportional to the rate set before it
    np.testing.assert_allclose(out[0], 10 * out[1], rtol=1e-12)
    assert np.abs(out[0]).max() > 0
