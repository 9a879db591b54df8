"""Reference ASGD, ported from PyTorch's single-tensor CPU code operation by operation."""

from __future__ import annotations

import numpy as np

from ..._base.optim import ASGDBase


class ASGD(ASGDBase):
    __doc__ = ASGDBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        (eta, mu), after = self._scalars(step)
        for key, p in params.items():
            g, ax = gradients[key], state[key]["ax"]
            t = p.dtype.type
            eta_t = float(t(eta))  # the value torch keeps, as a float64 again (``eta.item()``)
            with np.errstate(all="ignore"):
                if self.maximize:
                    g = -g
                if self.weight_decay != 0.0:
                    g = g + t(self.weight_decay) * p
                p *= t(1.0 - self.lambd * eta_t)
                p += t(-eta_t) * g
                if t(mu) != 1:
                    ax += (p - ax) * t(mu)
                else:
                    ax[...] = p
        self._eta_mu = after
