"""Reference averages, in plain NumPy: ``EMA``, the exponential moving average of the weights
(torch's ``AveragedModel`` with ``get_ema_multi_avg_fn``), and ``Accumulate``, the sums of
gradients over steps (``optax.MultiSteps``)."""

from __future__ import annotations

import numpy as np

from .. import _validate
from .._base.average import AccumulateBase, EMABase


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


def accumulate(fn, sums, gradients, first, divisor):
    """``sums[k] = (gradients[k] if first else sums[k] + gradients[k]) / divisor`` for every key
    (no division for a divisor of 1), the divisor rounded once to the dtype; every array
    checked first."""
    _validate.matching_keys(fn, "gradients", gradients, "the sums", sums)
    for key, s in sums.items():
        _validate.float_array(fn, f"sums[{key!r}]", s, writeable=True)
        _validate.like_state(fn, f"gradients[{key!r}]", gradients[key], s)
    _validate.no_overlaps(
        fn, [(f"sums[{k!r}]", s) for k, s in sums.items()], [(f"gradients[{k!r}]", g) for k, g in gradients.items()]
    )
    with np.errstate(all="ignore"):
        for key, s in sums.items():
            if first:
                np.copyto(s, gradients[key])
            else:
                s += gradients[key]
            if divisor != 1.0:
                s /= s.dtype.type(divisor)


class Accumulate(AccumulateBase):
    __doc__ = AccumulateBase.__doc__
    _accumulate = staticmethod(accumulate)
