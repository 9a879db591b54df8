"""gradfast.ASGD against its reference, bitwise (its running eta and mu too)."""

import gradfast as gf
import numpy as np
import pytest
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
    "lambd": st.sampled_from([0.0, 1e-4, 0.1]),
    "alpha": st.floats(0.0, 1.0),
    "t0": st.sampled_from([0.0, 2.0, 3.5, 1e6]),
    "weight_decay": st.sampled_from([0.0, 0.01, 0.2]),
    "maximize": st.booleans(),
}


@given(problems(), st.fixed_dictionaries(HYPER), st.lists(st.floats(0.0, 0.5), min_size=8, max_size=8))
def test_matches_reference(problem, hyper, rates):
    assert_runs_agree(lambda m: m.ASGD(**hyper), problem, rates)


def test_eta_and_mu_are_committed_with_the_step():
    opt = gf.ASGD(learning_rate=0.1, t0=1.0)
    assert (opt.eta, opt.mu) == (None, None)
    opt.update({"w": np.zeros(2)}, {"w": np.ones(2)})
    assert opt.step == 1 and opt.eta == 0.1 / (1 + 1e-4 * 0.1) ** 0.75 and opt.mu == 1.0
    with pytest.raises(ValueError):
        opt.update({"w": np.zeros(3)}, {"w": np.ones(3)})
    assert opt.step == 1 and opt.eta == 0.1 / (1 + 1e-4 * 0.1) ** 0.75


def test_one_thread_equals_many_threads():
    assert_threads_agree(lambda m: m.ASGD(1e-2, t0=1.0, weight_decay=0.1))


def test_bad_input_changes_nothing():
    assert_bad_input_changes_nothing(lambda m: m.ASGD(t0=0.0))


def test_resumes_bitwise():
    assert_resumes_bitwise(lambda m: m.ASGD(1e-2, t0=2.0))
