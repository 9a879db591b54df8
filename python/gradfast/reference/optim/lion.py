"""Reference Lion: ``lion_pytorch.Lion``'s ``update_fn`` operation by operation.

Scalars are formed in float64 and rounded once to the array's dtype; ``add(x, alpha=a)`` is
``self + a * x`` with the product rounded (ATen's scalar path).
"""

from __future__ import annotations

import numpy as np

from ..._base.optim import LionBase
from ._bf16 import _store, _widened, draws
from ._quant8 import load_slots, store_slots


def _lion_arrays(p, g, m, lr, beta1, beta2, weight_decay):
    """One Lion step on one array, in place on ``p`` and ``m``."""
    t = p.dtype.type
    with np.errstate(all="ignore"):
        p *= t(1.0 - lr * weight_decay)
        c = m * t(beta1) + t(1.0 - beta1) * g
        u = np.where(np.isnan(c), t(0), np.sign(c))  # torch's sign: NaN has sign 0
        p += t(-lr) * u
        m *= t(beta2)
        m += t(1.0 - beta2) * g


class Lion(LionBase):
    __doc__ = LionBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        words = draws(self, params, step)
        for key, p in params.items():
            written = [p]
            work = _widened(written) + load_slots(state[key], self.slots)
            (g,) = _widened([gradients[key]])
            _lion_arrays(work[0], g, work[1], self.learning_rate, self.beta1, self.beta2, self.weight_decay)
            _store(written, work[:1])
            store_slots(state[key], self.slots, work[1:], words[key])
