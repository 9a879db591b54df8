"""Reference Adafactor: ``torch.optim.Adafactor``'s single-tensor path operation by operation.

Scalars are formed in float64 as torch's Python does (with Python's ``max``/``min``, so a NaN
norm gives way to the other operand); norms are summed in float64 and rounded once to the
array's dtype, as ``.norm()`` returns them; element-wise work is in the array's dtype, ``lerp``
with ATen's two branches, ``rsqrt`` as ``1 / sqrt``.
"""

from __future__ import annotations

import numpy as np

from ..._base.optim import AdafactorBase
from ..._base.optim.adafactor import factored
from ._lerp import lerp_


def _pymax(a: float, b: float) -> float:
    """Python's ``max(a, b)``: ``b`` only when ``b > a``."""
    return b if b > a else a


def _norm(x, dtype, axis=None):
    """``x.norm(2)`` (over ``axis``, keeping it): float64 sums rounded once to ``dtype``."""
    x64 = x.astype(np.float64)
    return np.sqrt(np.sum(x64 * x64, axis=axis, keepdims=axis is not None)).astype(dtype)


def _adafactor_array(p, g, s, step, lr, beta2_decay, eps1, eps2, d, weight_decay):
    """One step on one array, in place on ``p`` and its state ``s``."""
    t = p.dtype.type
    if p.size == 0:
        return
    one_minus_beta2_t = t(float(step) ** beta2_decay)
    rho_t = min(lr, 1 / (float(step) ** 0.5))
    alpha = _pymax(eps2, float(_norm(p, p.dtype)) / (p.size**0.5)) * rho_t
    if weight_decay != 0:
        p *= t(1 - lr * weight_decay)
    if factored(p.shape):
        m, n = p.shape[-2:]
        rows = _norm(g, p.dtype, axis=-1)
        lerp_(s["row_var"], (rows * rows) / t(n), one_minus_beta2_t)
        cols = _norm(g, p.dtype, axis=-2)
        lerp_(s["col_var"], (cols * cols) / t(m), one_minus_beta2_t)
        var = s["row_var"] * s["col_var"]
        row_mean = np.sum(s["row_var"].astype(np.float64), axis=-2, keepdims=True).astype(p.dtype) / t(m)
        var /= np.maximum(row_mean, t(eps1))
    else:
        lerp_(s["variance"], g * g, one_minus_beta2_t)
        var = s["variance"].copy()
    u = (t(1) / np.sqrt(np.maximum(var, t(eps1 * eps1)))) * g
    denom = _pymax(1.0, float(_norm(u, p.dtype)) / ((u.size**0.5) * d))
    p += t(-alpha / denom) * u


class Adafactor(AdafactorBase):
    __doc__ = AdafactorBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        with np.errstate(all="ignore"):
            for key, p in params.items():
                g = -gradients[key] if self.maximize else gradients[key]
                _adafactor_array(
                    p,
                    g,
                    state[key],
                    step,
                    self.learning_rate,
                    self.beta2_decay,
                    self._eps1(p.dtype),
                    self.epsilon[1],
                    self.d,
                    self.weight_decay,
                )
