"""Proofs of the reference's bfloat16 storage: a step is the float32 step, with each stored
value rounded to nearest even (the IEEE rule, and PyTorch's bfloat16 conversion), checked
against the rounding done on the bits here, independently of ml_dtypes."""

import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest

BF16 = np.dtype(ml_dtypes.bfloat16)


def rne_bf16(a: np.ndarray) -> np.ndarray:
    """Finite float32 values rounded to bfloat16, nearest even, on their bits: add half a unit
    of the kept part (less one, plus the kept part's lowest bit) and drop the low 16 bits."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    assert np.isfinite(a).all()
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).view(BF16)


def exact_in_bf16(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(BF16).astype(np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: ref.Adam(0.01, weight_decay=0.1, amsgrad=True, **k),
        lambda **k: ref.AdamW(0.01, **k),
        lambda **k: ref.MomentumOptimizer(0.1, 0.9, nesterov=True, **k),
        lambda **k: ref.MomentumOptimizer(0.1, 0.9, **k),
        lambda **k: ref.Adagrad(0.1, weight_decay=0.1, initial_accumulator_value=0.1, maximize=True, **k),
        lambda **k: ref.Adamax(0.01, weight_decay=0.1, **k),
        lambda **k: ref.RMSprop(0.01, weight_decay=0.1, momentum=0.9, centered=True, **k),
    ],
)
def test_a_step_is_the_float32_step_rounded_when_stored(make):
    rng = np.random.default_rng(0)
    p0, g = exact_in_bf16(rng, 300), exact_in_bf16(rng, 300)
    full = make()
    full.update({"w": p0.copy()}, {"w": exact_in_bf16(rng, 300)})  # state not zero
    state0 = {s: a.astype(BF16).astype(np.float32) for s, a in full.state["w"].items()}
    full.state["w"] = {s: a.copy() for s, a in state0.items()}
    p32 = p0.copy()
    full.update({"w": p32}, {"w": g})

    # float32 params, bfloat16 state: the same params; the state rounded to nearest even
    low = make(state_dtype="bfloat16")
    low.state, low.step = {"w": {s: a.astype(BF16) for s, a in state0.items()}}, full.step - 1
    p = p0.copy()
    low.update({"w": p}, {"w": g})
    assert p.tobytes() == p32.tobytes()
    for s, a in full.state["w"].items():
        assert low.state["w"][s].tobytes() == rne_bf16(a).tobytes(), s
        assert not np.array_equal(a, low.state["w"][s].astype(np.float32)), "rounding is exercised"

    # all bfloat16: the params rounded too
    every = make(state_dtype="bfloat16")
    every.state, every.step = {"w": {s: a.astype(BF16) for s, a in state0.items()}}, full.step - 1
    pb = p0.astype(BF16)
    every.update({"w": pb}, {"w": g.astype(BF16)})
    assert pb.tobytes() == rne_bf16(p32).tobytes()
