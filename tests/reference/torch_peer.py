"""Stepping a reference optimizer beside its ``torch.optim`` peer (``foreach=False``).

Each step starts from the same state on both sides (torch's, copied into ours after the
comparison), so that what is compared is one step's arithmetic, not rounding differences
compounded over steps. Agreement is to a few units in the last place in float32, to 1e-12
relative in float64, of the step's scale: the largest magnitude among the parameter, its
gradient and the value compared. PyTorch's vectorized CPU code fuses the multiply-adds of
``add(alpha=)`` and ``lerp``; where a sum cancels (``g + weight_decay * p``, ``p - step``) the
difference of one rounding is large beside the small result, and a quotient magnifies it
(RMSprop's ``g / avg`` with a small centered ``avg``: up to 8 units). Arrays of float64 run under
``torch.set_default_dtype(torch.float64)``, so that torch keeps its 0-d state (step, NAdam's
``mu_product``) in float64 as gradfast does for float64 params.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

SHAPES = [(), (7,), (33, 17), (2, 3, 64)]
STEPS = 6
#: float32: units in the last place of the step's scale; float64: relative to it
MAX_ULPS = 8
RTOL64 = 1e-12


@contextlib.contextmanager
def default_dtype(dtype: np.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def assert_close(ours: np.ndarray, theirs: np.ndarray, scale: float, what: str) -> None:
    """``ours`` within ``MAX_ULPS`` (float32) or ``RTOL64`` (float64) of ``scale`` from
    ``theirs``, NaN where it is."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=what)
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    if not b.size:
        return
    scale = max(scale, float(np.abs(b).max()))
    allowed = MAX_ULPS * float(np.spacing(np.float32(scale))) if ours.dtype == np.float32 else RTOL64 * scale
    err = np.abs(a - b)
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err[worst] <= allowed, f"{what}: {a[worst]!r} vs torch {b[worst]!r} at {worst} (allowed {allowed:.3g})"


def _max_abs(a: np.ndarray) -> float:
    return float(np.abs(a).max()) if a.size else 0.0


def run_beside_torch(ours, make_torch, dtype, *, steps=STEPS, seed=0, extra=()):
    """Step ``ours`` (a reference optimizer) and ``make_torch(params)`` with the same random
    params and gradients over ``SHAPES``, comparing params and every state slot after each
    step; ``extra`` names 0-d torch state entries compared (exactly) with attributes of ``ours``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    params = {f"p{i}": np.asarray(rng.standard_normal(s)).astype(dtype) for i, s in enumerate(SHAPES)}
    with default_dtype(dtype):
        tparams = {k: torch.nn.Parameter(torch.from_numpy(p.copy())) for k, p in params.items()}
        peer = make_torch(list(tparams.values()))
        for t in range(1, steps + 1):
            grads = {k: np.asarray(rng.standard_normal(p.shape)).astype(dtype) for k, p in params.items()}
            scales = {k: max(_max_abs(params[k]), _max_abs(grads[k])) for k in params}
            for k, tp in tparams.items():
                tp.grad = torch.from_numpy(grads[k].copy())
            peer.step()
            ours.update(params, grads)
            for name in extra:
                assert getattr(ours, name) == peer.state[tparams["p0"]][name].item(), f"step {t} {name}"
            for k, tp in tparams.items():
                theirs = tp.detach().numpy()
                assert_close(params[k], theirs, scales[k], f"step {t} params[{k!r}]")
                params[k][...] = theirs
                tstate = peer.state[tp]
                assert set(ours.state[k]) == set(tstate) - {"step", *extra}, f"step {t} slots of {k!r}"
                for slot, a in ours.state[k].items():
                    assert_close(a, tstate[slot].numpy(), scales[k], f"step {t} state[{k!r}][{slot!r}]")
                    a[...] = tstate[slot].numpy()
