"""Reference averages of the weights, in plain NumPy: ``EMA``, the exponential moving average
(torch's ``AveragedModel`` with ``get_ema_multi_avg_fn``)."""

from __future__ import annotations

import numpy as np

from .._base.average import EMABase


class EMA(EMABase):
    __doc__ = EMABase.__doc__

    def _lerp(self, fn, params, weight):
        params = self._check_lerp(fn, params)
        for key, a in self._averaged.items():
            p = params[key]
            w = a.dtype.type(weight)
            with np.errstate(all="ignore"):
                if w < 0.5:
                    a += w * (p - a)
                else:
                    np.subtract(p, (p - a) * (a.dtype.type(1) - w), out=a)
