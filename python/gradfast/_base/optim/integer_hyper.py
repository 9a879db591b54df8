"""Hyper-parameters that are counts (warmup steps, Newton-Schulz steps)."""

from __future__ import annotations

from ... import _validate
from ..optimizer import Hyper, forget_packed


class IntegerHyper(Hyper):
    """A ``Hyper`` that must be an ``int`` in ``[lo, hi]``."""

    def __set__(self, obj, value) -> None:
        fn = type(obj).__name__
        lo, hi = self.bounds["lo"], self.bounds["hi"]
        obj.__dict__[self.name] = _validate.integer(fn, self.name, value, lo=lo, hi=hi)
        forget_packed(obj)
