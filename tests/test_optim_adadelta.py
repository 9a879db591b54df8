"""gradfast.Adadelta against its reference, bitwise."""

import ml_dtypes
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

BF16 = np.dtype(ml_dtypes.bfloat16)
HYPER = {
    "learning_rate": st.floats(0.0, 2.0),
    "rho": st.floats(0.0, 1.0),
    "epsilon": st.floats(1e-10, 1e-3),
    "weight_decay": st.sampled_from([0.0, 0.01, 0.2]),
    "maximize": st.booleans(),
}


@given(problems(), st.fixed_dictionaries(HYPER), st.lists(st.floats(0.0, 2.0), min_size=8, max_size=8))
def test_matches_reference(problem, hyper, rates):
    assert_runs_agree(lambda m: m.Adadelta(**hyper), problem, rates)


@given(problems(dtypes=(np.float32,)), st.fixed_dictionaries(HYPER))
def test_bfloat16_state_matches_reference(problem, hyper):
    assert_runs_agree(lambda m: m.Adadelta(**hyper, state_dtype="bfloat16"), problem)


@given(problems(dtypes=(BF16,)), st.fixed_dictionaries(HYPER), st.sampled_from([None, "bfloat16"]))
def test_bfloat16_params_match_reference(problem, hyper, state_dtype):
    assert_runs_agree(lambda m: m.Adadelta(**hyper, state_dtype=state_dtype), problem)


def test_one_thread_equals_many_threads():
    assert_threads_agree(lambda m: m.Adadelta(0.5, weight_decay=0.1))


def test_bad_input_changes_nothing():
    assert_bad_input_changes_nothing(lambda m: m.Adadelta(weight_decay=0.1))


def test_resumes_bitwise():
    assert_resumes_bitwise(lambda m: m.Adadelta(0.5))
