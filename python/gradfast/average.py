"""Rust-backed averages of the weights: ``EMA``, every array of the dict in one call."""

from __future__ import annotations

from . import _core
from ._base.average import EMABase


class EMA(EMABase):
    __doc__ = EMABase.__doc__

    def _lerp(self, fn, params, weight):
        _core.ema_update(fn, self._averaged, params, _core.EmaHyper(weight=weight))
