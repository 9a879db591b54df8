"""The reference NAdam against ``torch.optim.NAdam`` (``foreach=False``), step for step,
``mu_product`` included (torch keeps it in its default dtype: float64 for float64 arrays here)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_bad_hyper_rejected  # noqa: E402
from gradfast.reference import NAdam  # noqa: E402
from torch_peer import run_beside_torch  # noqa: E402

DTYPES = [np.float32, np.float64]
# (gradfast's keyword arguments, torch's)
SETTINGS = [
    ({}, {}),
    ({"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.9}, {"lr": 0.01, "betas": (0.8, 0.9)}),
    ({"beta1": 0.3, "momentum_decay": 0.1}, {"betas": (0.3, 0.999), "momentum_decay": 0.1}),
    ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ({"weight_decay": 0.1, "decoupled": True}, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ({"maximize": True, "epsilon": 1e-3}, {"maximize": True, "eps": 1e-3}),
    (
        {"maximize": True, "weight_decay": 0.2, "decoupled": True, "learning_rate": 0.05},
        {"maximize": True, "weight_decay": 0.2, "decoupled_weight_decay": True, "lr": 0.05},
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("ours", "theirs"), SETTINGS)
def test_nadam_is_torch_step_for_step(ours, theirs, dtype):
    run_beside_torch(
        NAdam(**ours), lambda ps: torch.optim.NAdam(ps, foreach=False, **theirs), dtype, extra=("mu_product",)
    )


def test_float32_mu_product_over_many_steps_is_torchs():
    # the float32 product drifts from the float64 one: it must drift as torch's does
    opt = NAdam(momentum_decay=0.05)
    tp = torch.nn.Parameter(torch.zeros(1))
    peer = torch.optim.NAdam([tp], foreach=False, momentum_decay=0.05)
    p = {"w": np.zeros(1, np.float32)}
    for _ in range(300):
        tp.grad = torch.ones(1)
        peer.step()
        opt.update(p, {"w": np.ones(1, np.float32)})
    assert opt.mu_product == peer.state[tp]["mu_product"].item()
    exact = 1.0
    for t in range(1, 301):
        exact *= opt._mu(t)
    assert opt.mu_product != exact


def test_mu_product_is_saved_and_checked_on_load():
    opt = NAdam()
    opt.update({"w": np.ones(3)}, {"w": np.ones(3)})
    d = opt.state_dict()
    assert d["mu_product"] == opt.mu_product == 0.9 * (1 - 0.5 * 0.96**0.004)
    fresh = NAdam()
    fresh.load_state_dict(d)
    assert fresh.mu_product == opt.mu_product
    for bad, match in [(2.0, r"d\['mu_product'\] must be a finite number in \[0.0, 1.0\]"), ("x", "real number")]:
        other = NAdam()
        with pytest.raises((ValueError, TypeError), match=match):
            other.load_state_dict({**d, "mu_product": bad})
        assert other.mu_product == 1.0 and other.step == 0
    with pytest.raises(ValueError, match="must have key 'mu_product'"):
        NAdam().load_state_dict({k: v for k, v in d.items() if k != "mu_product"})
    with pytest.raises(ValueError, match=r"must be 1.0 with no state"):
        NAdam().load_state_dict({"step": 0, "hyperparams": {}, "state": {}, "mu_product": 0.5})


def test_bfloat16_state_is_the_float32_step_rounded_with_mu_product_carried():
    # NAdam's extra state rides in state_dict: the float32 and the bfloat16 runs resume from
    # the same one (the rounding itself is proven in test_optim_lowprec_rounding.py)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(0)
    p0, g0, g = (rng.standard_normal(300).astype(bf16).astype(np.float32) for _ in range(3))
    full = NAdam(0.01, weight_decay=0.1, decoupled=True)
    full.update({"w": p0.copy()}, {"w": g0})
    d = full.state_dict()
    rounded = {"w": {s: a.astype(bf16) for s, a in d["state"]["w"].items()}}
    full.load_state_dict({**d, "state": {"w": {s: a.astype(np.float32) for s, a in rounded["w"].items()}}})
    low = NAdam(0.01, weight_decay=0.1, decoupled=True, state_dtype="bfloat16")
    low.load_state_dict({**d, "state": rounded})
    p32, p = p0.copy(), p0.copy()
    full.update({"w": p32}, {"w": g})
    low.update({"w": p}, {"w": g})
    assert p.tobytes() == p32.tobytes()
    assert low.mu_product == full.mu_product
    for s, a in full.state["w"].items():
        assert low.state["w"][s].tobytes() == a.astype(bf16).tobytes(), s


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"beta1": 1.0}, "beta1"), ({"momentum_decay": -1.0}, "momentum_decay"), ({"epsilon": -1.0}, "epsilon")],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
    assert_bad_hyper_rejected(NAdam, kwargs, match)
