"""bfloat16 arrays in the reference optimizers: widened to float32 working copies, the
float32 step run on them, and the results rounded to nearest even (ml_dtypes' cast) once,
when written back, so the update of the params uses the state before its rounding, exactly
as the Rust kernels do; or, for state with ``rounding='stochastic'``, rounded with 16 bits
of the counter-based stream (``draws`` and ``stochastic``, see ``LowPrecisionState``)."""

from __future__ import annotations

import numpy as np

from ... import _validate
from ..._base.optim.low_precision import element_starts
from .. import _random


def _widened(arrays):
    """float32 working copies of the bfloat16 arrays among ``arrays`` (None stays None)."""
    return [a.astype(np.float32) if a is not None and _validate.is_bf16(a.dtype) else a for a in arrays]


def _store(arrays, work, words=None) -> None:
    """Round the float32 results of ``work`` into the bfloat16 arrays they were widened from.

    With ``words`` (a parameter's entry of ``draws``; ``arrays`` is then the parameter and
    its state slots, ``None`` for a slot it does not keep) the state is rounded
    stochastically, the ``k``-th slot present with ``words(k)``, and the parameter to nearest."""
    with np.errstate(all="ignore"):  # a NaN propagates, as in the arithmetic, without a warning
        k = 0
        for i, (a, w) in enumerate(zip(arrays, work)):
            if a is None:
                continue
            if words is not None and i > 0:
                a[...] = stochastic(w, words(k))
                k += 1
            elif w is not a:
                a[...] = w


def draws(optimizer, params, step: int) -> dict:
    """Per key of ``params``, the random bits of stochastic rounding of step ``step``, as a
    function of the state slot ``k`` giving a uint32 array shaped as the parameter (``None``
    with nearest rounding): element ``e`` of the step (its index among all the step's params,
    of every group) takes piece ``e % 4`` of word ``e // 4`` of stream ``4 step + k``."""
    if getattr(optimizer, "rounding", "nearest") != "stochastic":
        return dict.fromkeys(params)
    starts = optimizer._starts or element_starts(params)
    seed = optimizer.seed

    def pieces(at: int, p: np.ndarray):
        def of_slot(k: int) -> np.ndarray:
            w0, off = divmod(at, 4)
            words = _random.bits(seed, (4 * step + k) & _random.MASK, (off + p.size + 3) // 4, start=w0)
            quarters = (words[:, None] >> (np.arange(4, dtype=np.uint64) * np.uint64(16))) & np.uint64(0xFFFF)
            return quarters.reshape(-1)[off : off + p.size].astype(np.uint32).reshape(p.shape)

        return of_slot

    return {k: pieces(starts[k], p) for k, p in params.items()}


def stochastic(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """float32 ``x`` as bfloat16 rounded stochastically by the 16-bit draws ``r``: added to the
    float32 bits before their low half is dropped; NaN made quiet."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    bits = np.where(np.isnan(x), b | np.uint32(0x0040_0000), b + r.astype(np.uint32))
    return (bits >> np.uint32(16)).astype(np.uint16).view(_validate.bf16())
