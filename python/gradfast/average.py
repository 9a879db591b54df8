"""Rust-backed averages: ``EMA`` of the weights and ``Accumulate`` of the gradients, every array
of the dict in one call."""

from __future__ import annotations

from . import _core
from ._base.average import AccumulateBase, EMABase


class EMA(EMABase):
    __doc__ = EMABase.__doc__

    def _lerp(self, fn, params, weight):
        _core.ema_update(fn, self._averaged, params, _core.EmaHyper(weight=weight))


def accumulate(fn, sums, gradients, first, divisor):
    """``sums[k] = (gradients[k] if first else sums[k] + gradients[k]) / divisor`` for every key
    (no division for a divisor of 1), in one pass: ``Accumulate``'s and ``DataParallel``'s."""
    _core.accumulate(fn, sums, gradients, _core.AccumulateHyper(first=first, divisor=divisor))


class Accumulate(AccumulateBase):
    __doc__ = AccumulateBase.__doc__
    _accumulate = staticmethod(accumulate)
    _kernel_checks = True
