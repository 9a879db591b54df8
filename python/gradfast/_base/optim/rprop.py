"""The declaration of Rprop."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import Hyper, Optimizer


def _pair(fn: str, name: str, value: object) -> tuple[object, object]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{fn}: {name} must be a pair of numbers, got {value!r}")
    return value[0], value[1]


class RpropBase(Optimizer):
    """Rprop (Riedmiller and Braun, 1993), the sign-based rule without backtracking, in place.

    Matches ``torch.optim.Rprop`` (``foreach=False``) step for step. Per element, in the
    array's dtype, with ``g`` negated first when ``maximize``, ``sign`` as torch's (+1, -1, or 0
    for zero and NaN) and the scalars rounded once to the dtype::

        s = sign(g * prev)
        factor = etaplus if s > 0 else etaminus if s < 0 else 1
        step_size = min(max(step_size * factor, step_size_min), step_size_max)
        g = 0 where factor == etaminus                # the sign flipped: no move this step
        p = p + (-1 * sign(g)) * step_size
        prev = g

    ``etas = (etaminus, etaplus)`` with ``0 < etaminus < 1 < etaplus`` and
    ``step_sizes = (step_size_min, step_size_max)``, as torch; each half is also a
    hyper-parameter of its own (``etaminus``, ``etaplus``, ``step_size_min``,
    ``step_size_max``). State slots per parameter: ``prev`` (zeros at first) and
    ``step_size`` (``learning_rate`` at the first step, rounded to the dtype; a later change of
    ``learning_rate`` does not change it, as in torch).
    """

    slots = ("prev", "step_size")
    hyperparams = ("learning_rate", "etaminus", "etaplus", "step_size_min", "step_size_max", "maximize")
    etaminus = Hyper(lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    etaplus = Hyper(lo=1.0, lo_open=True)
    step_size_min = Hyper(lo=0.0)
    step_size_max = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.etas, self.step_sizes, self.maximize = etas, step_sizes, maximize

    @property
    def etas(self) -> tuple[float, float]:
        """``(etaminus, etaplus)``: the factors of the step size after a sign change and after none."""
        return self.etaminus, self.etaplus

    @etas.setter
    def etas(self, value: tuple[float, float]) -> None:
        lo, hi = _pair(self._name, "etas", value)
        lo = _validate.number(self._name, "etas[0]", lo, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        hi = _validate.number(self._name, "etas[1]", hi, lo=1.0, lo_open=True)
        self.etaminus, self.etaplus = lo, hi

    @property
    def step_sizes(self) -> tuple[float, float]:
        """``(step_size_min, step_size_max)``: the bounds of every element's step size."""
        return self.step_size_min, self.step_size_max

    @step_sizes.setter
    def step_sizes(self, value: tuple[float, float]) -> None:
        lo, hi = _pair(self._name, "step_sizes", value)
        lo = _validate.number(self._name, "step_sizes[0]", lo, lo=0.0)
        hi = _validate.number(self._name, "step_sizes[1]", hi, lo=0.0)
        self.step_size_min, self.step_size_max = lo, hi

    def _fresh_state(self, params, gradients) -> dict[Any, dict[str, np.ndarray]]:
        state = super()._fresh_state(params, gradients)
        for slots in state.values():
            slots["step_size"][...] = self.learning_rate  # rounded to the dtype, as torch's full_like
        return state
