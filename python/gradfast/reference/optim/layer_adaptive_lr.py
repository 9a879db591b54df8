"""Reference layer-wise adaptive learning rates."""

from __future__ import annotations

import numpy as np

from ..._base.optim import LayerAdaptiveLRBase
from ..._base.optimizer import next_step


class LayerAdaptiveLR(LayerAdaptiveLRBase):
    __doc__ = LayerAdaptiveLRBase.__doc__

    def _advance(self, fn, params, gradients, write):
        step = None if write == "rates" else next_step(fn, self.step)
        state, steps = self._next(fn, gradients)
        claimed, views = self._resolve(fn, gradients), self._views()
        out = {}
        for key, g in gradients.items():
            h = views[claimed[key]] if key in claimed else self  # the layer's hyper-parameters
            sq = state[key]["square_avg"]
            t = sq.dtype.type
            with np.errstate(all="ignore"):
                sq *= t(h.beta)
                sq += t(1.0 - h.beta) * (g * g)
                corrected = sq / t(1.0 - h.beta ** steps[key])
                # np.asarray: a 0-d layer gives a 0-d array, not a NumPy scalar
                rate = np.asarray(t(h.learning_rate) / (np.sqrt(corrected) + t(h.epsilon)))
                if write == "rates":
                    out[key] = rate
                elif write == "stepped":
                    p = params[key]
                    out[key] = np.subtract(p, rate * g, out=np.empty(p.shape, p.dtype))
                else:
                    p = params[key]  # in place, never through the mapping's item assignment
                    p -= rate * g
        self.state, self.layer_steps = state, steps
        if step is not None:
            self.step = step
        return out
