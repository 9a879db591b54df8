"""Reference LAMB."""

from __future__ import annotations

import math

import numpy as np

from ..._base.optim import LAMBBase
from ..clip import vector_norm
from .adam import _adam_moments


class LAMB(LAMBBase):
    __doc__ = LAMBBase.__doc__

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        # the bias corrections as factors: one division per element
        inv_bc1 = 1.0 / (1.0 - self.beta1**step)
        inv_bc2_sqrt = 1.0 / math.sqrt(1.0 - self.beta2**step)
        for key, p in params.items():
            g, m, v = gradients[key], state[key]["exp_avg"], state[key]["exp_avg_sq"]
            if self.maximize:
                g = -g
            t = p.dtype.type
            with np.errstate(all="ignore"):
                _adam_moments(g, m, v, self.beta1, self.beta2)
                r = (m * t(inv_bc1)) / (np.sqrt(v) * t(inv_bc2_sqrt) + t(self.epsilon))
                if self.weight_decay != 0.0:
                    r += t(self.weight_decay) * p
                p_norm, r_norm = vector_norm(p), vector_norm(r)
                trust = p_norm / r_norm if p_norm > 0.0 and r_norm > 0.0 else 1.0
                p -= t(self.learning_rate * trust) * r
