"""Reference LARS."""

from __future__ import annotations

import numpy as np

from ..._base.optim import LARSBase
from ..clip import vector_norm


class LARS(LARSBase):
    __doc__ = LARSBase.__doc__

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        for key, p in params.items():
            g, v = gradients[key], state[key]["velocity"]
            if self.maximize:
                g = -g
            t = p.dtype.type
            with np.errstate(all="ignore"):
                p_norm, g_norm = vector_norm(p), vector_norm(g)
                if p_norm > 0.0 and g_norm > 0.0:
                    denom = g_norm + self.weight_decay * p_norm + self.epsilon
                    local_lr = self.trust_coefficient * p_norm / denom
                else:
                    local_lr = 1.0
                d = g + t(self.weight_decay) * p if self.weight_decay != 0.0 else g
                v *= t(self.momentum)
                v += t(self.learning_rate * local_lr) * d
                p -= v
