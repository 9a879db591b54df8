"""The declaration of Adamax."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class AdamaxBase(LowPrecisionState):
    """Adamax (Kingma and Ba, 2015, section 7: Adam with the infinity norm), in place.

    Matches ``torch.optim.Adamax`` (``foreach=False``) step for step. At step ``t``
    (1-based), in the array's dtype, with scalars formed in float64 and rounded once::

        g = -g if maximize else g
        g = g + weight_decay * p                      (only when weight_decay != 0)
        m = m.lerp(g, 1 - beta1)                      (ATen's two branches, as Adam's)
        u = maximum(u * beta2, abs(g) + epsilon)      (NaN-propagating, as torch.maximum)
        p = p + (-clr * m) / u

    where ``clr = learning_rate / (1 - beta1**t)``. ``epsilon`` is added to ``|g|`` before
    the maximum, as torch does (not to the denominator). State slots per parameter:
    ``exp_avg`` (m) and ``exp_inf`` (u).

    Low precision: ``state_dtype='bfloat16'`` stores the moments as ``ml_dtypes.bfloat16``,
    params and gradients may be bfloat16 too; the step is computed in float32 and the
    parameter update uses the moments as computed, before they are rounded for storage, to
    nearest even, or stochastically with ``rounding='stochastic'`` and ``seed=`` (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    slots = ("exp_avg", "exp_inf")
    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "maximize")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 2e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay, self.maximize = weight_decay, maximize
