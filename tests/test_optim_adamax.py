"""gradfast.Adamax against the reference Adamax, bitwise (the checks are optim_pairs.py's)."""

from hypothesis import strategies as st
from optim_pairs import RustMatchesReference


class TestAdamax(RustMatchesReference):
    name = "Adamax"
    hyper = {
        "learning_rate": st.floats(0.0, 0.1),
        "beta1": st.floats(0.0, 0.999),
        "beta2": st.floats(0.0, 0.9999),
        "epsilon": st.floats(1e-10, 1e-3),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "maximize": st.booleans(),
    }
    every_option = {"weight_decay": 0.1, "maximize": True}
