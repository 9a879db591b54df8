"""The declaration of Adam and AdamW."""

from __future__ import annotations

from ... import _validate
from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class AdamBase(LowPrecisionState):
    """Adam (Kingma and Ba, 2015) over a dict of arrays, in place.

    Matches ``torch.optim.Adam`` step for step; with ``decoupled=True`` the weight decay is
    AdamW's (Loshchilov and Hutter, 2019) and matches ``torch.optim.AdamW``. With
    ``amsgrad=True`` the maximum of the second moments is kept, as in PyTorch.
    State slots per parameter: ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).
    ``maximize=True`` ascends: the gradient is negated before anything else, as torch does.

    Low precision: ``state_dtype='bfloat16'`` stores the moments as ``ml_dtypes.bfloat16``
    (half the state memory, a third less traffic per step); params and gradients may be
    ``ml_dtypes.bfloat16`` arrays too, with float32 (``state_dtype=None``) or bfloat16 state.
    The step is computed in float32 and each stored value rounded to nearest even; the
    parameter update uses the moments before they are rounded (see ``LowPrecisionState``).
    ``rounding='stochastic'`` with ``seed=`` rounds the bfloat16 moments stochastically
    (slots 0, 1, 2: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``; see ``LowPrecisionState``).

    ``state_dtype='8bit'`` (float32 params) keeps the moments as bitsandbytes' block-wise 8-bit
    state (``exp_avg`` on its signed map, ``exp_avg_sq`` on its unsigned map, each with
    ``<slot>_absmax``), arrays under 4,096 elements in float32; the step is this float32 step,
    so weight decay stays torch ``Adam``'s L2 term (bitsandbytes' ``Adam8bit`` decays the AdamW
    way: ``AdamW(state_dtype='8bit')`` matches it). AMSGrad is not offered with 8-bit state.
    """

    _eight_bit = True
    _stochastic = True

    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "decoupled", "amsgrad", "maximize")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    decoupled = Hyper(flag=True)
    amsgrad = Hyper(flag=True)
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
        amsgrad: bool = False,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype, rounding, seed)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay, self.decoupled, self.amsgrad = weight_decay, decoupled, amsgrad
        self.maximize = maximize

    def _check_8bit(self, fn: str, params, gradients) -> None:
        if self.amsgrad:
            raise ValueError(
                f"{fn}: amsgrad must be False with state_dtype='8bit' (8-bit Adam keeps no maximum), got True"
            )
        super()._check_8bit(fn, params, gradients)

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        """The names of each parameter's state arrays: ``exp_avg``, ``exp_avg_sq`` (and
        ``max_exp_avg_sq`` with ``amsgrad``)."""
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg", "exp_avg_sq")


class AdamWBase(AdamBase):
    """Adam with decoupled weight decay; matches ``torch.optim.AdamW`` (default decay 0.01)."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        amsgrad: bool = False,
        maximize: bool = False,
        state_dtype: str | None = None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        super().__init__(
            learning_rate,
            beta1,
            beta2,
            epsilon,
            weight_decay,
            decoupled=True,
            amsgrad=amsgrad,
            maximize=maximize,
            state_dtype=state_dtype,
            rounding=rounding,
            seed=seed,
        )


def adam_hypers(fn: str, learning_rate, beta1, beta2, epsilon, weight_decay=0.0) -> tuple[float, ...]:
    """The checked hyper-parameters of the functional ``adam_optimizer``."""
    return (
        _validate.number(fn, "learning_rate", learning_rate, lo=0.0),
        _validate.number(fn, "beta1", beta1, lo=0.0, hi=1.0, hi_open=True),
        _validate.number(fn, "beta2", beta2, lo=0.0, hi=1.0, hi_open=True),
        _validate.number(fn, "epsilon", epsilon, lo=0.0),
        _validate.number(fn, "weight_decay", weight_decay, lo=0.0),
    )
