"""gradfast.optim.SGD (torch's SGD rule, the engine of gradfast.torch.SGD) against its reference
twin, bitwise (the checks are optim_pairs.py's)."""

import gradfast.optim
import gradfast.reference.optim
from hypothesis import strategies as st
from optim_pairs import RustMatchesReference


class TestSGD(RustMatchesReference):
    name = "SGD"
    hyper = {
        "learning_rate": st.floats(0.0, 0.1),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "dampening": st.sampled_from([0.0, 0.1]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "maximize": st.booleans(),
    }
    every_option = {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1, "maximize": True}

    def make(self, module, **kwargs):
        # internal: not exported at the top level, so taken from the optim modules
        return (gradfast.optim if module is gradfast else gradfast.reference.optim).SGD(**kwargs)


class TestSGDNesterov(TestSGD):
    hyper = {
        **TestSGD.hyper,
        "momentum": st.sampled_from([0.5, 0.9]),
        "dampening": st.just(0.0),
        "nesterov": st.just(True),
    }
    every_option = {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True}
