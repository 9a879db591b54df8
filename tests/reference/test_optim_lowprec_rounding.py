"""Proofs of the reference's bfloat16 storage: a step is the float32 step, with each stored
value rounded to nearest even as PyTorch's bfloat16 conversion rounds it."""

import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
import torch

BF16 = np.dtype(ml_dtypes.bfloat16)


def torch_bf16(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 by PyTorch, as ml_dtypes arrays."""
    bits = torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(torch.bfloat16).view(torch.int16).numpy()
    return bits.view(BF16)


def exact_in_bf16(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(BF16).astype(np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: ref.Adam(0.01, weight_decay=0.1, amsgrad=True, **k),
        lambda **k: ref.AdamW(0.01, **k),
        lambda **k: ref.MomentumOptimizer(0.1, 0.9, nesterov=True, **k),
        lambda **k: ref.MomentumOptimizer(0.1, 0.9, **k),
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

    # float32 params, bfloat16 state: the same params; the state rounded as PyTorch rounds
    low = make(state_dtype="bfloat16")
    low.state, low.step = {"w": {s: a.astype(BF16) for s, a in state0.items()}}, full.step - 1
    p = p0.copy()
    low.update({"w": p}, {"w": g})
    assert p.tobytes() == p32.tobytes()
    for s, a in full.state["w"].items():
        assert low.state["w"][s].tobytes() == torch_bf16(a).tobytes(), s
        assert not np.array_equal(a, low.state["w"][s].astype(np.float32)), "rounding is exercised"

    # all bfloat16: the params rounded too
    every = make(state_dtype="bfloat16")
    every.state, every.step = {"w": {s: a.astype(BF16) for s, a in state0.items()}}, full.step - 1
    pb = p0.astype(BF16)
    every.update({"w": pb}, {"w": g.astype(BF16)})
    assert pb.tobytes() == torch_bf16(p32).tobytes()
