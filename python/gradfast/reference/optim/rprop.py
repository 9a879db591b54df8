"""Reference Rprop, ported from PyTorch's single-tensor CPU code operation by operation."""

from __future__ import annotations

import numpy as np

from ..._base.optim import RpropBase


def torch_sign(x: np.ndarray) -> np.ndarray:
    """``torch.sign``: +1, -1, or 0 for zeros and NaN (``np.sign`` gives NaN for NaN)."""
    t = x.dtype.type
    return (x > 0).astype(t) - (x < 0).astype(t)


class Rprop(RpropBase):
    __doc__ = RpropBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p in params.items():
            g, prev, size = gradients[key], state[key]["prev"], state[key]["step_size"]
            t = p.dtype.type
            minus = t(self.etaminus)
            with np.errstate(all="ignore"):
                if self.maximize:
                    g = -g
                s = torch_sign(g * prev)
                factor = np.where(s > 0, t(self.etaplus), np.where(s < 0, minus, t(1)))
                size *= factor
                np.minimum(np.maximum(size, t(self.step_size_min)), t(self.step_size_max), out=size)
                g = np.where(factor == minus, t(0), g)
                p += (t(-1) * torch_sign(g)) * size
                prev[...] = g
