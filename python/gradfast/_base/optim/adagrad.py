"""The declaration of Adagrad."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class AdagradBase(LowPrecisionState):
    """Adagrad (Duchi et al., 2011) over a dict of arrays, in place.

    Matches ``torch.optim.Adagrad`` (``foreach=False``) step for step. At step ``t``
    (1-based), in the array's dtype, with scalars formed in float64 and rounded once::

        g   = -g if maximize else g
        g   = g + weight_decay * p                   (only when weight_decay != 0)
        sum = sum + g * g
        p   = p + (-clr * g) / (sqrt(sum) + epsilon)

    where ``clr = learning_rate / (1 + (t - 1) * lr_decay)``. State slot per parameter:
    ``sum``, created filled with ``initial_accumulator_value`` (the constructor's, fixed then,
    as torch ignores a parameter group's).

    Low precision: ``state_dtype='bfloat16'`` stores ``sum`` as ``ml_dtypes.bfloat16``, params
    and gradients may be bfloat16 too (see ``LowPrecisionState``). A bfloat16 ``sum`` stops
    growing once ``g * g`` falls below half its last place with nearest rounding; with
    ``rounding='stochastic'`` and ``seed=`` it grows by ``g * g`` in expectation (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    slots = ("sum",)
    hyperparams = ("learning_rate", "lr_decay", "weight_decay", "epsilon", "maximize")
    _group_fixed = {"initial_accumulator_value": "the optimizer's only; torch ignores a group's"}
    lr_decay = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    epsilon = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        epsilon: float = 1e-10,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self._initial_accumulator_value = _validate.number(
            self._name, "initial_accumulator_value", initial_accumulator_value, lo=0.0
        )
        self.lr_decay, self.weight_decay, self.epsilon, self.maximize = lr_decay, weight_decay, epsilon, maximize

    @property
    def initial_accumulator_value(self) -> float:
        """The value ``sum`` starts from; fixed at construction."""
        return self._initial_accumulator_value

    def _fresh_state(self, params, gradients) -> dict[Any, dict[str, np.ndarray]]:
        state = super()._fresh_state(params, gradients)
        for slots in state.values():
            slots["sum"][...] = self._initial_accumulator_value  # rounded once to the state dtype
        return state
