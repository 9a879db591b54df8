"""Reference Adagrad, ported from ``torch.optim.adagrad._single_tensor_adagrad``."""

from __future__ import annotations

import numpy as np

from ..._base.optim import AdagradBase
from ._bf16 import _store, _widened, draws
from ._gradient import gradient


class Adagrad(AdagradBase):
    __doc__ = AdagradBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(self._update_name, params, gradients, state)
        clr = self.learning_rate / (1 + (step - 1) * self.lr_decay)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["sum"]]
            p, s = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                g = gradient(g, p, self.maximize, self.weight_decay)
                s += g * g  # addcmul_(g, g, value=1)
                p += (t(-clr) * g) / (np.sqrt(s) + t(self.epsilon))  # addcdiv, left to right
            _store(written, [p, s], words[key])
