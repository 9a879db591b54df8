"""Reference RAdam, ported from PyTorch's single-tensor CPU code operation by operation."""

from __future__ import annotations

import math

import numpy as np

from ..._base.optim import RAdamBase
from ._bf16 import _store, _widened, draws
from .adam import _adam_moments


def radam_scalars(beta2: float, step: int) -> tuple[float, float]:
    """``(rho_t, rect)`` of RAdam at step ``step``, in float64 (``rect`` only used when
    ``rho_t > 5``, where it is real)."""
    bc2 = 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / bc2
    if rho_t <= 5.0:
        return rho_t, 0.0
    return rho_t, math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))


class RAdam(RAdamBase):
    __doc__ = RAdamBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        lr, wd = self.learning_rate, self.weight_decay
        bc1 = 1.0 - self.beta1**step
        bc2_sqrt = math.sqrt(1.0 - self.beta2**step)
        rho_t, rect = radam_scalars(self.beta2, step)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["exp_avg"], state[key]["exp_avg_sq"]]
            p, m, v = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                if self.maximize:
                    g = -g
                if wd != 0.0:
                    if self.decoupled:
                        p *= t(1.0 - lr * wd)
                    else:
                        g = g + t(wd) * p
                _adam_moments(g, m, v, self.beta1, self.beta2)
                a = (m / t(bc1)) * t(lr)
                if rho_t > 5.0:
                    adaptive = (t(1) / (np.sqrt(v) + t(self.epsilon))) * t(bc2_sqrt)
                    p -= (a * adaptive) * t(rect)
                else:
                    p -= a
            _store(written, [p, m, v], words[key])
