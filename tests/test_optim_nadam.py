"""gradfast.NAdam against the reference NAdam, bitwise (the checks are optim_pairs.py's)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from optim_pairs import RustMatchesReference, assert_runs_bitwise, problems


class TestNAdam(RustMatchesReference):
    name = "NAdam"
    hyper = {
        "learning_rate": st.floats(0.0, 0.1),
        "beta1": st.floats(0.0, 0.999),
        "beta2": st.floats(0.0, 0.9999),
        "epsilon": st.floats(1e-10, 1e-3),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "momentum_decay": st.floats(0.0, 0.1),
        "decoupled": st.booleans(),
        "maximize": st.booleans(),
    }
    every_option = {"weight_decay": 0.1, "decoupled": True, "maximize": True}

    @given(problems(dtypes=(np.float32,)), st.sampled_from(["bfloat16", None]))
    def test_mu_product_is_the_references(self, problem, state_dtype):
        o_gf, o_ref = assert_runs_bitwise(self.make, problem, momentum_decay=0.05, state_dtype=state_dtype)
        assert o_gf.mu_product == o_ref.mu_product
