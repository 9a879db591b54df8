"""Reference unit-wise adaptive gradient clipping (AGC), in plain NumPy.

Brock, De, Smith and Simonyan, "High-Performance Large-Scale Image Recognition Without
Normalization", 2021 (arXiv 2102.06171), section 4.1.
"""

from __future__ import annotations

import numpy as np

from . import _checks

#: floor of a unit's gradient norm in the clipping factor, as in the paper's code
_GRAD_NORM_FLOOR = 1e-6


def _unit_norms(a: np.ndarray, n_units: int) -> np.ndarray:
    """Euclidean norm of each of the ``n_units`` rows of ``a``, in float64.

    ``a`` is first brought to C order, so the sums (and their rounding) do not depend on the
    layout of a read-only ``params`` array.
    """
    rows = np.ascontiguousarray(a, dtype=np.float64).reshape(n_units, a.size // n_units if n_units else 0)
    return np.sqrt(np.einsum("ij,ij->i", rows, rows))


def adaptive_grad_clip(gradients, params, clipping=0.01, eps=1e-3):
    """Unit-wise adaptive gradient clipping, in place on ``gradients``; returns ``gradients``.

    A unit is a row along axis 0 of an array with ``ndim > 1`` (an output unit of a
    ``(out, in, ...)`` weight; the norm runs over all other axes) and the whole array when
    ``ndim <= 1``. For every unit, with ``W`` its parameters and ``G`` its gradient::

        max_norm = clipping * max(||W||, eps)
        if ||G|| > max_norm:  G *= max_norm / max(||G||, 1e-6)

    Norms and the factor are computed in float64 (float32 arrays are converted with
    ``astype``); the factor is rounded once to the array's dtype and multiplies the unit.
    Units that are not clipped are not written. A NaN norm never triggers clipping, so NaN
    gradients pass through unchanged.

    Note that a ``(n, 1)`` bias (the seed's ``b{l}`` layout) has ``n`` one-element units;
    pass biases as 1-D arrays to clip them as one unit.
    """
    fn = "adaptive_grad_clip"
    dtype = _checks.params_and_grads(fn, gradients, params, "gradients", "params")
    clipping = _checks.number(fn, "clipping", clipping, lo=0.0)
    eps = _checks.number(fn, "eps", eps, lo=0.0)
    _checks.no_overlaps(
        fn,
        [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        [(f"params[{k!r}]", p) for k, p in params.items()],
    )
    if dtype is None:
        return gradients
    with np.errstate(all="ignore"):
        for key, g in gradients.items():
            n_units = g.shape[0] if g.ndim > 1 else 1
            w_norm = _unit_norms(params[key], n_units)
            g_norm = _unit_norms(g, n_units)
            max_norm = clipping * np.maximum(w_norm, eps)
            clip = g_norm > max_norm
            if clip.any():
                factor = (max_norm[clip] / np.maximum(g_norm[clip], _GRAD_NORM_FLOOR)).astype(g.dtype)
                rows = g.reshape(n_units, g.size // n_units)
                rows[clip] *= factor[:, None]
    return gradients
