"""Reference Adadelta, ported from PyTorch's single-tensor CPU code operation by operation."""

from __future__ import annotations

import numpy as np

from ..._base.optim import AdadeltaBase
from ._bf16 import _store, _widened, draws


class Adadelta(AdadeltaBase):
    __doc__ = AdadeltaBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["square_avg"], state[key]["acc_delta"]]
            p, sq, acc = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            rho, w, eps = t(self.rho), t(1.0 - self.rho), t(self.epsilon)
            with np.errstate(all="ignore"):
                if self.maximize:
                    g = -g
                if self.weight_decay != 0.0:
                    g = g + t(self.weight_decay) * p
                sq *= rho
                sq += (w * g) * g
                delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
                acc *= rho
                acc += (w * delta) * delta
                p += t(-self.learning_rate) * delta
            _store(written, [p, sq, acc], words[key])
