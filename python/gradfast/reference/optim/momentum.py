"""Reference momentum optimizer (the original rule, classical and Nesterov)."""

from __future__ import annotations

import numpy as np

from ..._base.optim import MomentumBase
from ._bf16 import _store, _widened, draws
from ._quant8 import load_slots, store_slots


class MomentumOptimizer(MomentumBase):
    __doc__ = MomentumBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored]
            (p,) = _widened(written)
            (v,) = load_slots(state[key], self.slots)
            (g,) = _widened([gradients[key]])
            if self.maximize:
                g = -g
            t = p.dtype.type
            mu, lr = t(self.momentum), t(self.learning_rate)
            with np.errstate(all="ignore"):
                v[...] = mu * v - lr * g
                if self.nesterov:
                    p += mu * v - lr * g
                else:
                    p += v
            _store(written, [p])
            store_slots(state[key], self.slots, [v], words[key])
