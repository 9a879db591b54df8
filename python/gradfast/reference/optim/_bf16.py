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


def _store(arrays, work) -> None:
    """Round the float32 results of ``work`` into the bfloat16 arrays they were widened from."""
    with np.errstate(all="ignore"):  # a NaN propagates, as in the arithmetic, without a warning
        for a, w in zip(arrays, work):
            if w is not a:
                a[...] = w


def draws(optimizer, params, step: int) -> dict:
    """Per key of ``params``, the uint64 words of stochastic rounding of step ``step`` shaped
    as its parameter (``None`` with nearest rounding): ``bits(seed, step, at + j)``, ``at``
    where the parameter starts in the concatenation of all the step's params (of every group)."""
    if getattr(optimizer, "rounding", "nearest") != "stochastic":
        return dict.fromkeys(params)
    starts = optimizer._starts or element_starts(params)
    return {k: _random.bits(optimizer.seed, step, p.size, start=starts[k]).reshape(p.shape) for k, p in params.items()}


def stochastic(x: np.ndarray, words: np.ndarray, slot: int) -> np.ndarray:
    """float32 ``x`` as bfloat16, rounded stochastically by bits ``16 slot`` to ``16 slot + 15``
    of ``words``: added to the float32 bits before their low half is dropped; NaN made quiet."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = ((words >> np.uint64(16 * slot)) & np.uint64(0xFFFF)).astype(np.uint32)
    bits = np.where(np.isnan(x), b | np.uint32(0x0040_0000), b + r)
    return (bits >> np.uint32(16)).astype(np.uint16).view(_validate.bf16())
