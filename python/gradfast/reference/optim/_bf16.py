"""bfloat16 arrays in the reference optimizers: widened to float32 working copies, the
float32 step run on them, and the results rounded to nearest even (ml_dtypes' cast) once,
when written back, so the update of the params uses the state before its rounding, exactly
as the Rust kernels do."""

from __future__ import annotations

import numpy as np

from ... import _validate


def _widened(arrays):
    """float32 working copies of the bfloat16 arrays among ``arrays`` (None stays None)."""
    return [a.astype(np.float32) if a is not None and _validate.is_bf16(a.dtype) else a for a in arrays]


def _store(arrays, work) -> None:
    """Round the float32 results of ``work`` into the bfloat16 arrays they were widened from."""
    with np.errstate(all="ignore"):  # a NaN propagates, as in the arithmetic, without a warning
        for a, w in zip(arrays, work):
            if w is not a:
                a[...] = w
