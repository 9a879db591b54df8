"""Reference NAdam, ported from ``torch.optim.nadam._single_tensor_nadam``."""

from __future__ import annotations

import numpy as np

from ..._base.optim import NAdamBase
from ._bf16 import _store, _widened, draws
from ._gradient import gradient
from .adam import _adam_moments


class NAdam(NAdamBase):
    __doc__ = NAdamBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(self._update_name, params, gradients, state)
        lr, wd = self.learning_rate, self.weight_decay
        dtype = next(iter(params.values())).dtype if params else None
        mu, mu_next = self._mu(step), self._mu(step + 1)
        mu_product = self._next_mu_product(step, dtype)
        c1 = -lr * (1.0 - mu) / (1.0 - mu_product)
        c2 = (-lr * mu_next) / (1.0 - mu_product * mu_next)
        bc2 = 1.0 - self.beta2**step
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["exp_avg"], state[key]["exp_avg_sq"]]
            p, m, v = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                if self.decoupled and wd != 0.0:
                    p *= t(1.0 - lr * wd)
                g = gradient(g, p, self.maximize, 0.0 if self.decoupled else wd)
                _adam_moments(g, m, v, self.beta1, self.beta2)
                denom = np.sqrt(v / t(bc2)) + t(self.epsilon)
                p += (t(c1) * g) / denom  # two addcdiv_, each left to right
                p += (t(c2) * m) / denom
            _store(written, [p, m, v], words[key])
        self.mu_product = mu_product
