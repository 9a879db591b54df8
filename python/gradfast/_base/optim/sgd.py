"""The declaration of torch's SGD rule (the engine of ``gradfast.torch.SGD``)."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class SGDBase(LowPrecisionState):
    """``torch.optim.SGD``'s rule, in place: with ``d = g + weight_decay * p`` (``g`` negated
    first for ``maximize``), the momentum buffer is ``b = d`` at step 1 and
    ``b = momentum * b + (1 - dampening) * d`` after; then ``p -= lr * (d + momentum * b)``
    (Nesterov) or ``p -= lr * b``. Without momentum there is no buffer and ``p -= lr * d``.

    Not the original design's ``MomentumOptimizer`` rule: here the buffer holds gradients, not
    steps, so a changed learning rate applies to the whole direction at once. Matches torch's
    single-tensor path (to its fused multiply-adds). State slot per parameter:
    ``momentum_buffer`` (with ``momentum > 0``). ``state_dtype='bfloat16'`` as in ``Adam``,
    the buffer rounded to nearest even or, with ``rounding='stochastic'`` and ``seed=``,
    stochastically. Internal: users reach it through ``gradfast.torch.SGD``.
    """

    _stochastic = True

    hyperparams = ("learning_rate", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    momentum = Hyper(lo=0.0)
    dampening = Hyper()
    weight_decay = Hyper(lo=0.0)
    nesterov = Hyper(flag=True)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.momentum, self.dampening, self.weight_decay = momentum, dampening, weight_decay
        self.nesterov, self.maximize = nesterov, maximize
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError(f"{self._name}: nesterov must be False unless momentum > 0 and dampening = 0")

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        """The names of each parameter's state arrays: ``momentum_buffer`` with ``momentum > 0``."""
        return ("momentum_buffer",) if self.momentum > 0.0 else ()
