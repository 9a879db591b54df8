"""Proofs of the reference's bfloat16 storage: a step is the float32 step, with each stored
value rounded to nearest even (the IEEE rule, and PyTorch's bfloat16 conversion), or, with
``rounding='stochastic'``, up or down as the documented bits of the stream say, checked
against the rounding done on the bits here, independently of ml_dtypes and of the
reference's stream."""

import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
from gradfast.reference.optim.radam import radam_scalars
from stream_oracle import M64, s_bits

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


#: every reference optimizer with rounding='stochastic', and the steps taken before the one
#: checked (RAdam's 7th step, with beta2 = 0.9, is rectified)
STOCHASTIC = {
    "AMSGrad": (lambda **k: ref.Adam(0.01, weight_decay=0.1, amsgrad=True, **k), 1),
    "AdamW": (lambda **k: ref.AdamW(0.01, **k), 1),
    "Nesterov": (lambda **k: ref.MomentumOptimizer(0.1, 0.9, nesterov=True, **k), 1),
    "Lion": (lambda **k: ref.Lion(0.01, weight_decay=0.1, **k), 1),
    "SGD": (lambda **k: ref.optim.SGD(0.01, momentum=0.9, dampening=0.1, weight_decay=0.1, **k), 1),
    "RMSprop": (lambda **k: ref.RMSprop(0.01, weight_decay=0.1, momentum=0.9, centered=True, **k), 1),
    "Adagrad": (lambda **k: ref.Adagrad(0.1, initial_accumulator_value=0.1, maximize=True, **k), 1),
    "Adamax": (lambda **k: ref.Adamax(0.01, weight_decay=0.1, **k), 1),
    "NAdam": (lambda **k: ref.NAdam(0.01, weight_decay=0.1, **k), 2),
    "RAdam": (lambda **k: ref.RAdam(0.01, beta2=0.9, weight_decay=0.1, **k), 6),
    "Adadelta": (lambda **k: ref.Adadelta(1.0, weight_decay=0.1, **k), 1),
}


def stochastic_bf16(x: float, r: int) -> int:
    """The bfloat16 bits of finite float32 ``x`` rounded by the 16-bit draw ``r``: the value
    below in magnitude (``x``'s bits truncated), one ulp up when the dropped fraction of an ulp
    and ``r / 2**16`` add up to a whole ulp or more."""
    b = int(np.float32(x).view(np.uint32))
    return (b >> 16) + (1 if (b & 0xFFFF) + r >= 0x10000 else 0)


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_a_stochastic_step_is_the_float32_step_rounded_by_its_drawn_bits(name):
    make, warm = STOCHASTIC[name]
    rng = np.random.default_rng(1)
    shapes = {"w": (5, 6), "b": (7,)}
    grads = [{k: exact_in_bf16(rng, s) for k, s in shapes.items()} for _ in range(warm + 1)]
    full = make()
    for g in grads[:warm]:  # state not zero
        full.update({k: np.zeros(s, np.float32) for k, s in shapes.items()}, g)
    saved = full.state_dict()
    low = make(state_dtype="bfloat16", rounding="stochastic", seed=2**64 - 3)
    low.load_state_dict(
        {**saved, "state": {k: {s: a.astype(BF16) for s, a in st.items()} for k, st in saved["state"].items()}}
    )
    full.load_state_dict(
        {
            **saved,
            "state": {
                k: {s: a.astype(BF16).astype(np.float32) for s, a in st.items()} for k, st in saved["state"].items()
            },
        }
    )
    assert (low.rounding, low.seed, low.step) == ("stochastic", 2**64 - 3, warm)
    p0 = {k: exact_in_bf16(rng, s) for k, s in shapes.items()}
    p32, p = {k: a.copy() for k, a in p0.items()}, {k: a.copy() for k, a in p0.items()}
    full.update(p32, grads[warm])
    low.update(p, grads[warm])
    if name == "RAdam":
        assert radam_scalars(0.9, low.step)[0] > 5.0
    for k in shapes:
        assert p[k].tobytes() == p32[k].tobytes(), k  # the params use the unrounded state

    # element e of the step (w's, then b's) in slot j takes piece e % 4 of word e // 4 of
    # stream 4 t + j
    t, e, differs = low.step, 0, 0
    for key in shapes:
        for j, slot in enumerate(full.slots):
            x = full.state[key][slot].ravel()
            r = [
                (s_bits(low.seed, (4 * t + j) % M64, (e + i) // 4) >> (16 * ((e + i) % 4))) & 0xFFFF
                for i in range(x.size)
            ]
            want = np.array([stochastic_bf16(xi, ri) for xi, ri in zip(x, r)], np.uint16)
            got = low.state[key][slot].view(np.uint16).ravel()
            np.testing.assert_array_equal(got, want, err_msg=f"{key} {slot}")
            differs += int(np.sum(want != rne_bf16(x).view(np.uint16)))
        e += full.state[key][full.slots[0]].size
    assert differs > 0, "stochastic rounding is exercised"
