"""gradfast.Adagrad against the reference Adagrad, bitwise (the checks are optim_pairs.py's)."""

from hypothesis import strategies as st
from optim_pairs import RustMatchesReference


class TestAdagrad(RustMatchesReference):
    name = "Adagrad"
    hyper = {
        "learning_rate": st.floats(0.0, 0.5),
        "lr_decay": st.floats(0.0, 0.5),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "initial_accumulator_value": st.floats(0.0, 1.0),
        "epsilon": st.floats(1e-10, 1e-3),
        "maximize": st.booleans(),
    }
    every_option = {"lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.1, "maximize": True}
