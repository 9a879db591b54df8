"""The declaration of Lion."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class LionBase(LowPrecisionState):
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), in place.

    Per element, with ``m`` the ``exp_avg`` slot::

        p = p * (1 - lr * weight_decay)              # the paper's decoupled decay
        p = p + (-lr) * sign(m * beta1 + (1 - beta1) * g)
        m = m * beta2 + (1 - beta2) * g

    Matches ``lion_pytorch.Lion`` (its ``update_fn``, with ``decoupled_weight_decay=False``)
    operation by operation, and ``optax.lion`` up to rounding. As torch's ``sign``, the sign
    of NaN is 0.

    ``state_dtype='bfloat16'`` stores ``exp_avg`` as ``ml_dtypes.bfloat16`` (params and
    gradients may be bfloat16 too): the step is computed in float32 and the moment rounded to
    nearest even when stored, or stochastically with ``rounding='stochastic'`` and ``seed=``
    (see ``LowPrecisionState``). ``state_dtype='8bit'`` (float32
    params) keeps it as block-wise 8-bit state on bitsandbytes' signed map (``exp_avg`` codes,
    ``exp_avg_absmax``), the rule of ``bitsandbytes.optim.Lion8bit``.
    """

    _eight_bit = True
    _stochastic = True

    slots = ("exp_avg",)
    hyperparams = ("learning_rate", "beta1", "beta2", "weight_decay")
    beta1 = Hyper(lo=0.0, hi=1.0)
    beta2 = Hyper(lo=0.0, hi=1.0)
    weight_decay = Hyper(lo=0.0)

    def __init__(
        self,
        learning_rate: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.99,
        weight_decay: float = 0.0,
        *,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.beta1, self.beta2, self.weight_decay = beta1, beta2, weight_decay
