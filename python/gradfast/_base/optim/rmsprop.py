"""The declaration of RMSprop."""

from __future__ import annotations

from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class RMSpropBase(LowPrecisionState):
    """RMSprop (Hinton's lecture 6e; centered: Graves, 2013) over a dict of arrays, in place.

    Matches ``torch.optim.RMSprop`` (``foreach=False``) step for step. At each step, in the
    array's dtype, with scalars formed in float64 and rounded once::

        g   = -g if maximize else g
        g   = g + weight_decay * p                          (only when weight_decay != 0)
        sq  = sq * alpha + ((1 - alpha) * g) * g
        avg = sqrt(sq) + epsilon,  or, centered:
              ga = ga.lerp(g, 1 - alpha);  avg = sqrt(sq - ga * ga) + epsilon
        momentum > 0:  buf = buf * momentum + g / avg;  p = p + (-learning_rate) * buf
        otherwise:     p = p + (-learning_rate * g) / avg

    (``lerp`` with ATen's two branches, as ``gradfast.Adam``'s first moment). State slots per
    parameter, as torch names them: ``square_avg`` (sq), ``momentum_buffer`` (buf, when
    ``momentum > 0``), ``grad_avg`` (ga, when ``centered``).

    Low precision: ``state_dtype='bfloat16'`` stores the state as ``ml_dtypes.bfloat16``,
    params and gradients may be bfloat16 too; the step is computed in float32 and the
    parameter update uses the state as computed, before it is rounded for storage, to nearest
    even, or stochastically with ``rounding='stochastic'`` and ``seed=`` (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    hyperparams = ("learning_rate", "alpha", "epsilon", "weight_decay", "momentum", "centered", "maximize")
    alpha = Hyper(lo=0.0, hi=1.0)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    centered = Hyper(flag=True)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-2,
        alpha: float = 0.99,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.alpha, self.epsilon, self.weight_decay = alpha, epsilon, weight_decay
        self.momentum, self.centered, self.maximize = momentum, centered, maximize

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        """The names of each parameter's state arrays: ``square_avg`` (and ``momentum_buffer``
        with ``momentum > 0``, ``grad_avg`` with ``centered``)."""
        return (
            ("square_avg",)
            + (("momentum_buffer",) if self.momentum > 0.0 else ())
            + (("grad_avg",) if self.centered else ())
        )
