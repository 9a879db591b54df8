"""gradfast.Rprop against its reference, bitwise."""

import gradfast as gf
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from optim_contract import (
    assert_bad_input_changes_nothing,
    assert_resumes_bitwise,
    assert_runs_agree,
    assert_threads_agree,
    problems,
)

HYPER = {
    "learning_rate": st.floats(0.0, 0.5),
    "etas": st.tuples(st.floats(0.01, 0.99), st.floats(1.01, 3.0)),
    "step_sizes": st.tuples(st.sampled_from([0.0, 1e-6, 1e-3]), st.sampled_from([1e-2, 1.0, 50.0])),
    "maximize": st.booleans(),
}


@given(problems(), st.fixed_dictionaries(HYPER))
def test_matches_reference(problem, hyper):
    params, grads = problem
    for g in grads[::2]:  # exact zeros and a NaN among the gradients
        for a in g.values():
            a.reshape(-1)[:2] = [0.0, np.nan][: a.size]
    assert_runs_agree(lambda m: m.Rprop(**hyper), (params, grads))


def test_step_sizes_start_at_the_learning_rate():
    opt = gf.Rprop(learning_rate=0.25)
    opt.update({"w": np.zeros(3, np.float32)}, {"w": np.ones(3, np.float32)})
    np.testing.assert_array_equal(opt.state["w"]["step_size"], np.float32(0.25))


def test_one_thread_equals_many_threads():
    assert_threads_agree(lambda m: m.Rprop(1e-2, etas=(0.4, 1.3)))


def test_bad_input_changes_nothing():
    assert_bad_input_changes_nothing(lambda m: m.Rprop())


def test_resumes_bitwise():
    assert_resumes_bitwise(lambda m: m.Rprop(1e-2))
