"""The declaration of schedule-free AdamW."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import _validate
from ..optimizer import Hyper, Optimizer
from .integer_hyper import IntegerHyper


class ScheduleFreeAdamWBase(Optimizer):
    """Schedule-free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), in place.

    Matches ``schedulefree.AdamWScheduleFree`` (its single-tensor path) step for step. Step
    ``t = k + 1`` of the optimizer, in float64 scalars::

        lr_t = learning_rate * min(1, t / warmup_steps)      # 1 when warmup_steps == 0
        lr_max = max(lr_max, lr_t);  weight = t**r * lr_max**weight_lr_power
        weight_sum += weight;  c = weight / weight_sum        # 0 while weight_sum == 0

    then per element, ``y`` the params in train mode, ``z`` and ``v`` the state slots::

        v = v * beta2 + (1 - beta2) * g * g
        u = g / (sqrt(v / (1 - beta2**t)) + epsilon) + weight_decay * y
        y = lerp(y, z, c) + lr_t * (beta1 * (1 - c) - 1) * u
        z = z - lr_t * u

    ``z`` starts as a copy of the params at the first step. The averaged weights
    ``x = lerp(y, z, 1 - 1/beta1)`` are not stored: ``eval(params)`` turns the params into
    ``x`` in place and ``train(params)`` turns them back into ``y`` (``lerp(x, z, 1 - beta1)``),
    each a no-op in the mode it leads to. Evaluate and save weights in eval mode; ``update``
    refuses to run in it. Unlike the peer, the optimizer starts in train mode.
    ``state_dict()`` also holds ``train_mode``, ``lr_max`` and ``weight_sum`` (the last two
    committed with each step, as the step count).
    """

    slots = ("z", "exp_avg_sq")
    hyperparams = (
        "learning_rate",
        "beta1",
        "beta2",
        "epsilon",
        "weight_decay",
        "warmup_steps",
        "r",
        "weight_lr_power",
    )
    _group_fixed = {
        h: "lr_max and weight_sum are kept once per optimizer, and the mode switches every array"
        for h in ("learning_rate", "beta1", "warmup_steps", "r", "weight_lr_power")
    }
    beta1 = Hyper(lo=0.0, hi=1.0, lo_open=True, hi_open=True)  # eval divides by beta1
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    warmup_steps = IntegerHyper(lo=0)
    r = Hyper(lo=0.0)
    weight_lr_power = Hyper(lo=0.0)

    def __init__(
        self,
        learning_rate: float = 2.5e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon, self.weight_decay = beta1, beta2, epsilon, weight_decay
        self.warmup_steps, self.r, self.weight_lr_power = warmup_steps, r, weight_lr_power
        self._steps.extra = (-1.0, 0.0, True)

    @property
    def train_mode(self) -> bool:
        """Whether ``params`` hold the gradient point (``update`` runs) rather than the averaged
        weights (after ``eval(params)``)."""
        return self._steps.extra[2]

    @train_mode.setter
    def train_mode(self, value: bool) -> None:
        lr_max, weight_sum, _ = self._steps.extra
        self._steps.extra = (lr_max, weight_sum, value)

    @property
    def lr_max(self) -> float:
        """The largest scheduled learning rate so far (-1 before the first step)."""
        return self._steps.extra[0]

    @property
    def weight_sum(self) -> float:
        """The sum of the averaging weights so far."""
        return self._steps.extra[1]

    def _schedule(self, step: int) -> tuple[float, float, float, float]:
        """``(lr_t, lr_max, weight_sum, c)`` of step number ``step``, as the peer computes them."""
        k = step - 1
        sched = (k + 1) / self.warmup_steps if k < self.warmup_steps else 1.0
        lr = self.learning_rate * sched
        lr_max = max(lr, self.lr_max)
        weight = ((k + 1) ** self.r) * (lr_max**self.weight_lr_power)
        weight_sum = self.weight_sum + weight
        return lr, lr_max, weight_sum, (weight / weight_sum if weight_sum != 0.0 else 0.0)

    def _fresh_state(self, params, gradients):
        _validate.params_and_grads(self._update_name, params, gradients, "params", "gradients")
        return {k: {"z": p.copy(order="C"), "exp_avg_sq": _validate.zeros_like(p)} for k, p in params.items()}

    def _check_train_mode(self) -> None:
        """``update`` runs in train mode only (checked under the lock, before anything else)."""
        if not self.train_mode:
            raise ValueError(
                f"{self._update_name}: the optimizer must be in train mode (call .train(params) "
                f"before training, .eval(params) before evaluating), got eval mode"
            )

    def train(self, params: Mapping[Any, Any]):
        """Turn ``params`` from the averaged weights into the gradient point, in place (a no-op
        in train mode); returns ``params``."""
        return self._switch(params, True)

    def eval(self, params: Mapping[Any, Any]):
        """Turn ``params`` into the averaged weights, to evaluate or save, in place (a no-op in
        eval mode); returns ``params``."""
        return self._switch(params, False)

    def _switch(self, params, train: bool):
        fn = f"{self._name}.{'train' if train else 'eval'}"
        with self._steps:
            params = _validate.array_dict(fn, "params", params)
            if self.state:
                _validate.matching_keys(fn, "params", params, "the optimizer state", self.state)
                for key, p in params.items():
                    _validate.float_array(fn, f"params[{key!r}]", p, writeable=True)
                    _validate.like_state(fn, f"params[{key!r}]", p, self.state[key]["z"])
                _validate.no_overlaps(
                    fn,
                    [(f"params[{k!r}]", p) for k, p in params.items()]
                    + [(f"state[{k!r}][{s!r}]", a) for k, slots in self.state.items() for s, a in slots.items()],
                )
                if self.train_mode != train:
                    weight = 1.0 - self.beta1 if train else 1.0 - 1.0 / self.beta1
                    self._lerp_to_z(fn, params, weight)
            self.train_mode = train
        return params

    def _lerp_to_z(self, fn: str, params, weight: float) -> None:
        """``p = lerp(p, z, weight)`` for every key, in place."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        return {"train_mode": self.train_mode, "lr_max": self.lr_max, "weight_sum": self.weight_sum}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        for name in ("train_mode", "lr_max", "weight_sum"):
            if name not in d:
                raise ValueError(f"{fn}: d must have key {name!r} (a ScheduleFreeAdamW state_dict), got it missing")
        train_mode = _validate.flag(fn, "d['train_mode']", d["train_mode"])
        lr_max = _validate.number(fn, "d['lr_max']", d["lr_max"], lo=-1.0)
        weight_sum = _validate.number(fn, "d['weight_sum']", d["weight_sum"], lo=0.0)
        return {"train_mode": train_mode, "_schedule_sums": (lr_max, weight_sum)}

    @property
    def _schedule_sums(self) -> tuple[float, float]:
        """``(lr_max, weight_sum)``, committed with the step (``_steps.extra``, with the mode:
        the Rust step checks the mode under the lock)."""
        return self._steps.extra[:2]

    @_schedule_sums.setter
    def _schedule_sums(self, value: tuple[float, float]) -> None:
        self._steps.extra = (*value, self.train_mode)
