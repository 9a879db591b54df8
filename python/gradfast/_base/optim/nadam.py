"""The declaration of NAdam."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import Hyper
from .low_precision import LowPrecisionState


class NAdamBase(LowPrecisionState):
    """NAdam (Dozat, 2016: Adam with Nesterov momentum) over a dict of arrays, in place.

    Matches ``torch.optim.NAdam`` (``foreach=False``) step for step; ``decoupled=True`` is its
    ``decoupled_weight_decay=True``. At step ``t`` (1-based), in the array's dtype, with
    scalars formed in float64 and rounded once::

        g = -g if maximize else g
        p = p * (1 - learning_rate * weight_decay)          (decoupled)
        g = g + weight_decay * p                            (otherwise; only when weight_decay != 0)
        m = m.lerp(g, 1 - beta1);  v = v * beta2 + ((1 - beta2) * g) * g      (as Adam's)
        denom = sqrt(v / (1 - beta2**t)) + epsilon
        p = p + (c1 * g) / denom
        p = p + (c2 * m) / denom

    with the momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``, the
    running product ``mu_product = mu_1 * ... * mu_t``, ``c1 = -learning_rate * (1 - mu_t) /
    (1 - mu_product)`` and ``c2 = -learning_rate * mu_{t+1} / (1 - mu_product * mu_{t+1})``.
    ``mu_product`` is the same for every parameter, so it is kept once per optimizer (torch
    keeps one 0-d tensor per parameter, all equal) and saved in ``state_dict()`` as
    ``'mu_product'``. It is rounded as torch rounds it: kept in float32 (each step
    ``float32(mu_product * float32(mu_t))``) for float32 and bfloat16 params, in float64 for
    float64 params (torch does that only under ``torch.set_default_dtype(torch.float64)``).
    State slots per parameter: ``exp_avg`` (m) and ``exp_avg_sq`` (v).

    Low precision: ``state_dtype='bfloat16'`` stores the moments as ``ml_dtypes.bfloat16``,
    params and gradients may be bfloat16 too; the step is computed in float32 and the
    parameter update uses the moments as computed, before they are rounded for storage, to
    nearest even, or stochastically with ``rounding='stochastic'`` and ``seed=`` (see
    ``LowPrecisionState``).
    """

    _stochastic = True

    slots = ("exp_avg", "exp_avg_sq")
    hyperparams = (
        "learning_rate",
        "beta1",
        "beta2",
        "epsilon",
        "weight_decay",
        "momentum_decay",
        "decoupled",
        "maximize",
    )
    _group_fixed = {h: "mu_product is kept once per optimizer" for h in ("beta1", "momentum_decay")}
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    momentum_decay = Hyper(lo=0.0)
    decoupled = Hyper(flag=True)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 2e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
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
        self.weight_decay, self.momentum_decay = weight_decay, momentum_decay
        self.decoupled, self.maximize = decoupled, maximize
        self.mu_product = 1.0

    @property
    def mu_product(self) -> float:
        """The product of the momentum coefficients so far, committed with every step (the
        ``extra`` of the step state)."""
        return self._steps.extra

    @mu_product.setter
    def mu_product(self, value: float) -> None:
        self._steps.extra = value

    def _mu(self, step: int) -> float:
        """The momentum coefficient ``mu_t`` of step ``step``, in float64 as torch forms it."""
        return self.beta1 * (1.0 - 0.5 * (0.96 ** (step * self.momentum_decay)))

    def _next_mu_product(self, step: int, dtype: np.dtype) -> float:
        """``mu_product`` after step ``step`` on arrays of ``dtype``, rounded as torch does."""
        if dtype == np.float64:
            return self.mu_product * self._mu(step)
        f32 = np.float32
        return float(f32(f32(self.mu_product) * f32(self._mu(step))))

    # -- saving and resuming -------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "mu_product": self.mu_product}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        if "mu_product" not in d:
            raise ValueError(
                f"{fn}: d must have key 'mu_product' (the product of the momentum coefficients), got it missing"
            )
        mu_product = _validate.number(fn, "d['mu_product']", d["mu_product"], lo=0.0, hi=1.0)
        if not state and mu_product != 1.0:
            raise ValueError(f"{fn}: d['mu_product'] must be 1.0 with no state (no step taken), got {mu_product!r}")
        return {**super()._load_extra_state(fn, d, state), "mu_product": mu_product}
