"""Reference of torch's SGD rule (momentum, dampening, Nesterov, weight decay)."""

from __future__ import annotations

import numpy as np

from ..._base.optim import SGDBase
from ._bf16 import _store, _widened


class SGD(SGDBase):
    __doc__ = SGDBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p_stored in params.items():
            buffered = self.momentum > 0.0
            written = [p_stored, state[key]["momentum_buffer"]] if buffered else [p_stored]
            widened = _widened(written)
            p = widened[0]
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                d = -g if self.maximize else g
                if self.weight_decay != 0.0:
                    d = d + t(self.weight_decay) * p
                if buffered:
                    b = widened[1]
                    mu = t(self.momentum)
                    b[...] = d if step == 1 else mu * b + t(1.0 - self.dampening) * d
                    d = d + mu * b if self.nesterov else b
                p += t(-self.learning_rate) * d
            _store(written, widened)
