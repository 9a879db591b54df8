"""The declaration of RAdam."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class RAdamBase(LowPrecisionState):
    """RAdam (Liu et al., 2020, arXiv 1908.03265) over a dict of arrays, in place.

    Matches ``torch.optim.RAdam`` (``foreach=False``) step for step; ``decoupled=True`` is
    torch's ``decoupled_weight_decay=True``. At step ``t`` (1-based), in the array's dtype,
    with ``g`` negated first when ``maximize`` and the scalars formed in float64 and rounded
    once (``rho_inf = 2 / (1 - beta2) - 1``, ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``)::

        p = p * (1 - learning_rate * weight_decay)   # decoupled
        g = g + weight_decay * p                     # otherwise (when weight_decay != 0)
        m = m.lerp(g, 1 - beta1)                      # Adam's moments, as gradfast.Adam
        v = beta2 * v + ((1 - beta2) * g) * g
        a = (m / (1 - beta1**t)) * learning_rate
        if rho_t > 5:
            p = p - (a * ((1 / (sqrt(v) + epsilon)) * sqrt(1 - beta2**t))) * rect
        else:
            p = p - a

    with ``rect = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))``.
    State slots per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v). PyTorch's vectorized CPU
    code fuses the multiply-adds of ``lerp`` and ``addcmul``, so its numbers are within a few
    units in the last place of these.

    Low precision: ``state_dtype='bfloat16'`` stores the moments as ``ml_dtypes.bfloat16``; the
    step is computed in float32 and uses the moments before they are rounded for storage, to
    nearest even, or stochastically with ``rounding='stochastic'`` and ``seed=`` (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    slots = ("exp_avg", "exp_avg_sq")
    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "decoupled", "maximize")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    decoupled = Hyper(flag=True)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay, self.decoupled, self.maximize = weight_decay, decoupled, maximize
