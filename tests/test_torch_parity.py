"""gradfast and its reference against PyTorch's own numbers.

The expected values were computed by torch itself (`tests/data/make_torch_fixtures.py`, which
records the torch version in the file), so these tests need no torch installed. Agreement is to a
few units in the last place: PyTorch's vectorized CPU code fuses some multiply-adds.
"""

from pathlib import Path

import numpy as np
import pytest

FIX = np.load(Path(__file__).parent / "data" / "torch_fixtures.npz")
KEYS = ("w", "b", "s")
STEPS = 5
TOL = {"float32": {"rtol": 1e-6, "atol": 1e-7}, "float64": {"rtol": 1e-14, "atol": 1e-16}}
OPTIMIZERS = {
    "adam": ("Adam", {"learning_rate": 1e-2}),
    "adam_l2": ("Adam", {"learning_rate": 1e-2, "weight_decay": 0.1}),
    "adam_amsgrad": ("Adam", {"learning_rate": 1e-2, "amsgrad": True, "beta1": 0.5, "beta2": 0.9}),
    "adamw": ("AdamW", {"learning_rate": 1e-2, "weight_decay": 0.1}),
}
CLIPS = {"clip_2": 2.0, "clip_inf": float("inf"), "clip_1": 1.0, "clip_3": 3.0}
DTYPES = ("float32", "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZERS))
def test_optimizers_match_torch_step_for_step(impl, case, dtype):
    name, kw = OPTIMIZERS[case]
    params = {k: FIX[f"{dtype}/params/{k}"].copy() for k in KEYS}
    opt = getattr(impl, name)(**kw)
    for t in range(STEPS):
        opt.update(params, {k: FIX[f"{dtype}/grads/{t}/{k}"] for k in KEYS})
    for k in KEYS:
        np.testing.assert_allclose(params[k], FIX[f"{dtype}/{case}/{k}"], **TOL[dtype], err_msg=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CLIPS))
def test_clip_grad_norm_matches_torch(impl, case, dtype):
    # 0-d stays an array, of the dtype (NumPy 1 makes a 0-d float32 times a float float64)
    grads = {k: np.array(FIX[f"{dtype}/grads/0/{k}"] * 3.0, dtype) for k in KEYS}
    total = impl.clip_grad_norm(grads, 1.5, CLIPS[case])
    np.testing.assert_allclose(total, FIX[f"{dtype}/{case}/total"], **TOL[dtype])
    for k in KEYS:
        np.testing.assert_allclose(grads[k], FIX[f"{dtype}/{case}/{k}"], **TOL[dtype], err_msg=k)
