"""The declaration of ASGD."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import _validate
from ..optimizer import Hyper, Optimizer


class ASGDBase(Optimizer):
    """Averaged SGD (Polyak and Juditsky, 1992) over a dict of arrays, in place.

    Matches ``torch.optim.ASGD`` (``foreach=False``) step for step. Per element, in the
    array's dtype, with ``g`` negated first when ``maximize`` and ``eta``, ``mu`` the values
    left by the previous step (``learning_rate`` and 1 before the first), rounded to the dtype::

        g = g + weight_decay * p                     # when weight_decay != 0
        p = p * (1 - lambd * eta)
        p = p + (-eta) * g
        ax = p if mu == 1 else ax + (p - ax) * mu

    then, in float64 from the current hyper-parameters and the step number ``t`` just taken,
    ``eta = learning_rate / (1 + lambd * learning_rate * t) ** alpha`` and
    ``mu = 1 / max(1, t - t0)``. ``eta`` and ``mu`` are the same for every array (torch keeps
    one copy per parameter), so they are kept once, as numbers, and saved in ``state_dict()``
    (``None`` before the first step). torch keeps them in its default dtype; here they are
    rounded to the arrays' dtype, so float64 arrays match torch under
    ``torch.set_default_dtype(torch.float64)``. State slot per parameter: ``ax``, the average.
    """

    slots = ("ax",)
    hyperparams = ("learning_rate", "lambd", "alpha", "t0", "weight_decay", "maximize")
    _group_fixed = {h: "eta and mu are kept once per optimizer" for h in ("learning_rate", "lambd", "alpha", "t0")}
    lambd = Hyper(lo=0.0)
    alpha = Hyper(lo=0.0)
    t0 = Hyper()
    weight_decay = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.lambd, self.alpha, self.t0 = lambd, alpha, t0
        self.weight_decay, self.maximize = weight_decay, maximize

    @property
    def eta(self) -> float | None:
        """The step size the next step takes (``None`` before the first: ``learning_rate``)."""
        pair = self._eta_mu
        return None if pair is None else pair[0]

    @property
    def mu(self) -> float | None:
        """The averaging weight the next step takes (``None`` before the first: 1)."""
        pair = self._eta_mu
        return None if pair is None else pair[1]

    @property
    def _eta_mu(self) -> tuple[float, float] | None:
        """``(eta, mu)``, committed with every step (the ``extra`` of the step state)."""
        return self._steps.extra

    @_eta_mu.setter
    def _eta_mu(self, value: tuple[float, float] | None) -> None:
        self._steps.extra = value

    def _scalars(self, step: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(eta, mu)`` for step number ``step``, and the pair that step leaves for the next."""
        now = (self.learning_rate, 1.0) if self._eta_mu is None else self._eta_mu
        lr = self.learning_rate
        after = (lr / ((1 + self.lambd * lr * step) ** self.alpha), 1 / max(1, step - self.t0))
        return now, after

    def _extra_state(self) -> dict[str, Any]:
        return {"eta": self.eta, "mu": self.mu}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        pair = []
        for name, bounds in (("eta", {"lo": 0.0}), ("mu", {"lo": 0.0, "hi": 1.0, "lo_open": True})):
            if name not in d:
                raise ValueError(f"{fn}: d must have key {name!r} (ASGD's running {name}), got it missing")
            if state:
                pair.append(_validate.number(fn, f"d[{name!r}]", d[name], **bounds))  # type: ignore[arg-type]
            elif d[name] is not None:
                raise ValueError(f"{fn}: d[{name!r}] must be None with no state arrays, got {d[name]!r}")
        return {"_eta_mu": tuple(pair) if state else None}
