"""Reference of torch's SGD rule (momentum, dampening, Nesterov, weight decay)."""

from __future__ import annotations

import numpy as np

from ..._base.optim import SGDBase
from ._bf16 import _store, _widened, draws
from ._quant8 import load_slots, store_slots


class SGD(SGDBase):
    __doc__ = SGDBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored]
            (p,) = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                d = -g if self.maximize else g
                if self.weight_decay != 0.0:
                    d = d + t(self.weight_decay) * p
                if self.momentum > 0.0:
                    (b,) = load_slots(state[key], self.slots)
                    mu = t(self.momentum)
                    b[...] = d if step == 1 else mu * b + t(1.0 - self.dampening) * d
                    d = d + mu * b if self.nesterov else b
                    store_slots(state[key], self.slots, [b], words[key])
                p += t(-self.learning_rate) * d
            _store(written, [p])
