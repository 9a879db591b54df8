"""The declaration of Adadelta."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class AdadeltaBase(LowPrecisionState):
    """Adadelta (Zeiler, 2012, arXiv 1212.5701) over a dict of arrays, in place.

    Matches ``torch.optim.Adadelta`` (``foreach=False``) step for step. In the array's dtype,
    with ``g`` negated first when ``maximize`` and every scalar rounded once::

        g = g + weight_decay * p                     # when weight_decay != 0
        square_avg = rho * square_avg + ((1 - rho) * g) * g
        delta = sqrt(acc_delta + epsilon) / sqrt(square_avg + epsilon) * g
        acc_delta = rho * acc_delta + ((1 - rho) * delta) * delta
        p = p + (-learning_rate) * delta

    State slots per parameter: ``square_avg``, ``acc_delta``. PyTorch's vectorized CPU code
    fuses the multiply-adds, so its numbers are within a few units in the last place of these.

    Low precision: ``state_dtype='bfloat16'`` stores both slots as ``ml_dtypes.bfloat16``; the
    step is computed in float32 and uses the values before they are rounded for storage, to
    nearest even, or stochastically with ``rounding='stochastic'`` and ``seed=`` (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    slots = ("square_avg", "acc_delta")
    hyperparams = ("learning_rate", "rho", "epsilon", "weight_decay", "maximize")
    rho = Hyper(lo=0.0, hi=1.0)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1.0,
        rho: float = 0.9,
        epsilon: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.rho, self.epsilon, self.weight_decay, self.maximize = rho, epsilon, weight_decay, maximize
