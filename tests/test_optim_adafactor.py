"""gradfast.Adafactor (Rust) against the reference: step for step over dtypes, shapes
(vectors with a full second moment, matrices and batches of matrices with factors),
hyper-parameters and a changing learning rate; thread counts bitwise, bad input and bad state
changing nothing, a resumed run bitwise.

The two sum the norms (of ``p``, of the rows and columns of ``g``, of the update) in float64 in
different orders (fixed lanes and pieces; NumPy's pairwise sums), so a norm may differ in its
last float64 bit: the runs agree within ``TOL``, not bitwise."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st
from optim_contract import (
    assert_bad_input_changes_nothing,
    assert_resumes_bitwise,
    assert_same_dicts,
    problems,
    run,
)
from test_threads import restore_threads  # noqa: F401 (the fixture)

HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "beta2_decay": st.floats(-1.0, 0.0),
    "epsilon": st.tuples(st.one_of(st.none(), st.floats(1e-30, 1e-3)), st.floats(0.0, 1e-2)),
    "d": st.floats(1.0, 5.0),
    "weight_decay": st.sampled_from([0.0, 0.01, 0.2]),
    "maximize": st.booleans(),
}


def assert_close(a, b):
    """The same keys, dtypes and shapes, values within ``TOL``."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_close(a[k], b[k])
        else:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            np.testing.assert_allclose(a[k], b[k], **TOL[a[k].dtype], err_msg=str(k))


@given(problems(), st.fixed_dictionaries(HYPER), st.lists(st.floats(0.0, 0.1), min_size=8, max_size=8))
def test_matches_reference(problem, hyper, rates):
    params, grads = problem
    p_gf, o_gf = run(gf.Adafactor(**hyper), params, grads, rates)
    p_ref, o_ref = run(ref.Adafactor(**hyper), params, grads, rates)
    assert_close(p_gf, p_ref)
    assert_close(o_gf.state, o_ref.state)
    s_gf, s_ref = o_gf.state_dict(), o_ref.state_dict()
    assert s_gf["hyperparams"] == s_ref["hyperparams"] and s_gf["step"] == s_ref["step"] == len(grads)


def test_state_is_factored_over_the_last_two_dims():
    opt = gf.Adafactor()
    params = {"w": np.ones((2, 5, 3), np.float32), "b": np.ones(4, np.float32)}
    opt.update(params, {k: np.ones_like(p) for k, p in params.items()})
    assert {s: a.shape for s, a in opt.state["w"].items()} == {"row_var": (2, 5, 1), "col_var": (2, 1, 3)}
    assert {s: a.shape for s, a in opt.state["b"].items()} == {"variance": (4,)}


@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("shape", [(700, 600), (3, 300, 500), (600_000,)])
def test_one_thread_equals_many_threads_bitwise(shape):
    rng = np.random.default_rng(6)
    params = {"w": rng.standard_normal(shape).astype(np.float32)}
    grads = [{"w": rng.standard_normal(shape).astype(np.float32)} for _ in range(2)]
    runs = []
    for threads in (1, 2, 4):
        gf.set_num_threads(threads)
        p, opt = run(gf.Adafactor(1e-2, weight_decay=0.1), params, grads)
        runs.append({"params": p, **opt.state_dict()})
    for r in runs[1:]:
        assert_same_dicts(runs[0], r)
    p, opt = run(ref.Adafactor(1e-2, weight_decay=0.1), params, grads)
    assert_close(runs[0]["params"], p)
    assert_close(runs[0]["state"], opt.state)


def test_bad_input_changes_nothing():
    assert_bad_input_changes_nothing(lambda m: m.Adafactor(1e-2, weight_decay=0.1))


@pytest.mark.parametrize(
    ("slots", "match"),
    [
        ({"row_var": np.zeros((4, 1)), "col_var": np.zeros((3, 1))}, r"\['w'\]"),
        ({"variance": np.zeros((4, 3))}, r"\['w'\]"),
        ({"row_var": np.zeros((4, 1))}, r"\['w'\]"),
    ],
)
def test_bad_state_changes_nothing(slots, match):
    for impl in (gf, ref):
        opt = impl.Adafactor(0.1)
        p = {"w": np.ones((4, 3))}
        opt.update(p, {"w": np.ones((4, 3))})
        opt.state["w"] = {s: a.copy() for s, a in slots.items()}
        saved, before = opt.state_dict(), p["w"].copy()
        with pytest.raises(ValueError, match=match):
            opt.update(p, {"w": np.ones((4, 3))})
        assert_same_dicts(opt.state_dict(), saved)
        np.testing.assert_array_equal(p["w"], before)


def test_resumes_bitwise():
    assert_resumes_bitwise(lambda m: m.Adafactor(1e-2, beta2_decay=-0.5, epsilon=(1e-20, 1e-3)))


def test_learning_rate_is_settable_and_takes_effect():
    out = []
    for impl in (gf, ref):
        for later in (0.1, 0.01):
            opt, p = impl.Adafactor(0.1), {"w": np.ones((3, 2)), "b": np.ones(2)}
            g = {"w": np.arange(6.0).reshape(3, 2), "b": np.array([1.0, -1.0])}
            opt.update(p, g)
            opt.learning_rate = later
            opt.update(p, g)
            out.append(p)
    assert not np.array_equal(out[0]["w"], out[1]["w"])
    assert_same_dicts(out[0], out[2])
    assert_same_dicts(out[1], out[3])
