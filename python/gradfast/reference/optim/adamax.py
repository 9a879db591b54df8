"""Reference Adamax, ported from ``torch.optim.adamax._single_tensor_adamax``."""

from __future__ import annotations

import numpy as np

from ..._base.optim import AdamaxBase
from ._bf16 import _store, _widened, draws
from ._gradient import gradient


def _lerp_(m: np.ndarray, g: np.ndarray, weight: float) -> None:
    """``m.lerp_(g, weight)`` in place, with ATen's two branches (the second exact at weight 1)."""
    t = m.dtype.type
    w = t(weight)
    if w < 0.5:
        m += w * (g - m)
    else:
        m[...] = g - (g - m) * (t(1) - w)


class Adamax(AdamaxBase):
    __doc__ = AdamaxBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(self._update_name, params, gradients, state)
        clr = self.learning_rate / (1 - self.beta1**step)
        words = draws(self, params, step)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["exp_avg"], state[key]["exp_inf"]]
            p, m, u = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                g = gradient(g, p, self.maximize, self.weight_decay)
                _lerp_(m, g, 1.0 - self.beta1)
                np.maximum(u * t(self.beta2), np.abs(g) + t(self.epsilon), out=u)
                p += (t(-clr) * m) / u  # addcdiv, left to right
            _store(written, [p, m, u], words[key])
