"""gradfast.RMSprop against the reference RMSprop, bitwise (the checks are optim_pairs.py's)."""

from hypothesis import strategies as st
from optim_pairs import RustMatchesReference


class TestRMSprop(RustMatchesReference):
    name = "RMSprop"
    hyper = {
        "learning_rate": st.floats(0.0, 0.1),
        "alpha": st.floats(0.0, 1.0),
        "epsilon": st.floats(1e-8, 1e-3),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "centered": st.booleans(),
        "maximize": st.booleans(),
    }
    every_option = {"weight_decay": 0.1, "momentum": 0.9, "centered": True, "maximize": True}
