"""The declaration of the momentum optimizer (classical and Nesterov)."""

from __future__ import annotations

import numpy as np

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class MomentumBase(LowPrecisionState):
    """The original design's momentum rule, in place: ``v = momentum*v - lr*g``, then
    ``p += v`` (classical) or ``p += momentum*v - lr*g`` (Nesterov).

    ``maximize=True`` ascends: the gradient is negated before anything else, as torch does.
    The velocities are the ``velocity`` state slot, also readable as ``velocities``.
    ``state_dtype='bfloat16'`` stores them as ``ml_dtypes.bfloat16``; params and gradients may
    be bfloat16 too. The step is computed in float32 and the parameter update uses the
    velocity before it is rounded for storage (see ``LowPrecisionState``), to nearest even or,
    with ``rounding='stochastic'`` and ``seed=``, stochastically.
    ``state_dtype='8bit'`` (float32 params) keeps it as block-wise 8-bit state on
    bitsandbytes' signed map (``velocity`` codes, ``velocity_absmax``); the rule stays this one,
    so it is held to float32 state within quantization error (bitsandbytes' ``SGD8bit``
    keeps torch's buffer ``b = momentum*b + g`` instead).
    """

    _eight_bit = True
    _stochastic = True

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "nesterov", "maximize")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    nesterov = Hyper(flag=True)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.momentum, self.nesterov, self.maximize = momentum, nesterov, maximize

    @property
    def velocities(self) -> dict[str, np.ndarray]:
        """The velocity of each parameter (the live state arrays, not copies)."""
        return {k: s["velocity"] for k, s in self.state.items()}
