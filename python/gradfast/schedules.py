"""Schedulers that drive an optimizer: PyTorch's ``torch.optim.lr_scheduler`` classes.

Each class takes torch's constructor arguments with the gradfast optimizer first, sets
``optimizer.learning_rate`` in its constructor (as torch's do) and on every ``.step()``
(``ReduceLROnPlateau``: ``.step(metric)``), and has ``get_last_lr()`` (a list of one float),
``state_dict()`` and ``load_state_dict()``. The parameter groups of an optimizer follow through
their ``lr_scale``, a factor of ``learning_rate``::

    opt = gf.AdamW(1e-3)
    warmup = gf.schedules.LinearLR(opt, start_factor=0.01, total_iters=100)
    decay = gf.schedules.CosineAnnealingLR(opt, T_max=900)
    schedule = gf.schedules.SequentialLR(opt, [warmup, decay], milestones=[100])
    for batch in batches:
        opt.update(params, grads)
        schedule.step()

The values are torch's step for step: the same recurrences (torch's "chainable" forms, which
scale the optimizer's current rate, so two schedulers stepping one optimizer compose as in
torch) and, where torch switches to them (``SequentialLR``'s milestones), the same closed
forms, in the same double-precision operation order. This is scalar bookkeeping done once
per step, so it is pure Python, and it is its own reference: ``gradfast.reference.schedules``
is this module.

What torch keeps in ``param_groups`` (``initial_lr``, the first rate any scheduler saw, shared
by every scheduler of an optimizer) is kept here per optimizer, without touching it.
``load_state_dict`` restores the scheduler (its counters and arguments), not the optimizer's
rate: load the optimizer's own state for that. gradfast's ``learning_rate`` must be >= 0;
where rounding takes a chained rate a hair below zero (torch would keep ``-1e-18``), it is set
as ``0.0``.
"""

from __future__ import annotations

import math
import types
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from . import _validate

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "Scheduler",
]

#: torch's ``group["initial_lr"]``: the rate each optimizer had when its first scheduler was made
_initial_lrs: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _optimizer(fn: str, optimizer: object) -> Any:
    if not hasattr(optimizer, "learning_rate"):
        raise TypeError(
            f"{fn}: optimizer must be a gradfast optimizer (an object with a settable learning_rate), "
            f"got {type(optimizer).__name__}"
        )
    return optimizer


def _set_lr(optimizer: Any, lr: float) -> None:
    optimizer.learning_rate = 0.0 if lr < 0.0 else lr


def _one(fn: str, name: str, value: object) -> object:
    """A per-group argument: a number, or torch's list of one number per group (one here)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"{fn}: {name} must be a number or a list of one (a gradfast optimizer is one group), "
                f"got a list of {len(value)}"
            )
        return value[0]
    return value


def _float_list(fn: str, name: str, value: object) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 1:
        raise ValueError(f"{fn}: {name} must be a list of one number, got {value!r:.80}")
    return [_validate.number(fn, f"{name}[0]", value[0], lo=0.0)]


class Scheduler:
    """What every scheduler shares: torch's ``LRScheduler``.

    ``last_epoch`` counts the steps taken (``-1`` before the constructor's initial step);
    ``base_lrs`` is ``[initial_lr]``. A subclass implements ``_chained()`` (torch's ``get_lr``)
    and, where torch has one, ``_closed_form()`` (its ``_get_closed_form_lr``), lists ``_fields``
    (the attributes its ``state_dict`` holds beyond the common ones) and checks them in
    ``_check()``, which the constructor and ``load_state_dict`` both run before anything is set.
    """

    _fields: ClassVar[tuple[str, ...]] = ()
    _common: ClassVar[tuple[str, ...]] = ("base_lrs", "last_epoch", "_step_count", "_last_lr")
    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1) -> None:
        fn = self._name
        self.optimizer = _optimizer(fn, optimizer)
        last_epoch = _validate.integer(fn, "last_epoch", last_epoch, lo=-1)
        self._check()
        if last_epoch == -1:
            initial = _initial_lrs.setdefault(optimizer, self._initial_lr(optimizer))
        elif optimizer in _initial_lrs:
            initial = _initial_lrs[optimizer]
        else:
            raise ValueError(
                f"{fn}: last_epoch must be -1 for an optimizer no scheduler has driven yet (resuming "
                f"needs the initial rate a first scheduler records), got {last_epoch}"
            )
        self.base_lrs = [initial]
        self.last_epoch = last_epoch
        self._initial_step()

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _initial_lr(self, optimizer) -> float:
        return float(optimizer.learning_rate)

    def _check(self) -> None:
        """Validate and normalise the class's own arguments (the attributes in ``_fields``)."""

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial

    def step(self) -> None:
        """Advance one step and set ``optimizer.learning_rate``."""
        counters = self.last_epoch, self._step_count
        self._step_count += 1
        try:
            self._update_lr(None)
        except BaseException:  # a rate the optimizer refused (an lr_lambda's NaN): no step taken
            self.last_epoch, self._step_count = counters
            raise

    def _update_lr(self, epoch: int | None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self._chained()
        else:
            self.last_epoch = epoch
            values = self._closed_form() if hasattr(self, "_closed_form") else self._chained()
        _set_lr(self.optimizer, values[0])
        self._last_lr = [float(self.optimizer.learning_rate)]

    def _chained(self) -> list[float]:
        raise NotImplementedError

    @property
    def _lr(self) -> float:
        return float(self.optimizer.learning_rate)

    def get_last_lr(self) -> list[float]:
        """The rate the last step set, as a list of one float (torch's one per group)."""
        return list(self._last_lr)

    # -- saving and resuming -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's counters and arguments, as plain numbers, strings and lists."""
        d = {k: getattr(self, k) for k in self._common + self._fields}
        return {k: list(v) if isinstance(v, list) else v for k, v in d.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``: everything is checked first, and a state that is not
        this class's raises ``TypeError``/``ValueError`` and changes nothing. The optimizer's
        rate is not touched (it is the optimizer's state)."""
        self._prepare(state_dict)()

    def _prepare(self, d: object) -> Callable[[], None]:
        """Check ``d``; return what commits it."""
        fn = f"{self._name}.load_state_dict"
        d = _validate.mapping(fn, "state_dict", d, "values")
        expected = self._common + self._fields
        missing = [k for k in expected if k not in d]
        extra = [k for k in d if k not in expected]
        if missing or extra:
            raise ValueError(
                f"{fn}: state_dict must have the keys of a {self._name} state ({', '.join(expected)}), "
                f"got {'missing ' + repr(missing[0]) if missing else 'extra ' + repr(extra[0])}"
            )
        probe = object.__new__(type(self))
        probe.__dict__.update(self.__dict__)
        probe.__dict__.update({k: d[k] for k in self._fields})
        probe._check()
        values = {k: getattr(probe, k) for k in self._fields}
        values.update(self._check_common(fn, d))
        return lambda: self.__dict__.update(values)

    def _check_common(self, fn: str, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "base_lrs": _float_list(fn, "state_dict['base_lrs']", d["base_lrs"]),
            "last_epoch": _validate.integer(fn, "state_dict['last_epoch']", d["last_epoch"], lo=-1),
            "_step_count": _validate.integer(fn, "state_dict['_step_count']", d["_step_count"], lo=0),
            "_last_lr": _float_list(fn, "state_dict['_last_lr']", d["_last_lr"]),
        }


class LambdaLR(Scheduler):
    """``lr = base_lr * lr_lambda(last_epoch)`` (torch's ``LambdaLR``).

    ``state_dict`` holds the ``__dict__`` of an ``lr_lambda`` that is a callable object, and
    ``None`` for a function or lambda (as torch: code is not saved)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1) -> None:
        lr_lambda = _one(self._name, "lr_lambda", lr_lambda)
        if not callable(lr_lambda):
            raise TypeError(f"{self._name}: lr_lambda must be callable, got {type(lr_lambda).__name__}")
        self._lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def _chained(self) -> list[float]:
        return [self.base_lrs[0] * self._lambda(self.last_epoch)]

    def state_dict(self) -> dict[str, Any]:
        f = self._lambda
        return super().state_dict() | {"lr_lambdas": [None if isinstance(f, types.FunctionType) else dict(f.__dict__)]}

    def _prepare(self, d: object) -> Callable[[], None]:
        fn = f"{self._name}.load_state_dict"
        d = _validate.mapping(fn, "state_dict", d, "values")
        saved = d.get("lr_lambdas")
        if not isinstance(saved, (list, tuple)) or len(saved) != 1:
            raise ValueError(f"{fn}: state_dict['lr_lambdas'] must be a list of one entry, got {saved!r:.80}")
        if saved[0] is not None and not isinstance(saved[0], Mapping):
            raise ValueError(f"{fn}: state_dict['lr_lambdas'][0] must be None or a dict, got {saved[0]!r:.80}")
        common = super()._prepare({k: v for k, v in d.items() if k != "lr_lambdas"})
        f = self._lambda

        def commit() -> None:
            common()
            if saved[0] is not None:
                f.__dict__.update(saved[0])

        return commit


class MultiplicativeLR(LambdaLR):
    """``lr = lr * lr_lambda(last_epoch)`` from the second step on (torch's ``MultiplicativeLR``)."""

    def _chained(self) -> list[float]:
        if self._is_initial:
            return [self._lr]
        return [self._lr * self._lambda(self.last_epoch)]


class StepLR(Scheduler):
    """``lr *= gamma`` every ``step_size`` steps (torch's ``StepLR``)."""

    _fields = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        self.step_size = _validate.integer(self._name, "step_size", self.step_size, lo=1)
        self.gamma = _validate.number(self._name, "gamma", self.gamma, lo=0.0)

    def _chained(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [self._lr]
        return [self._lr * self.gamma]

    def _closed_form(self) -> list[float]:
        return [self.base_lrs[0] * self.gamma ** (self.last_epoch // self.step_size)]


class MultiStepLR(Scheduler):
    """``lr *= gamma`` at each milestone (``gamma ** n`` at one listed ``n`` times; torch's
    ``MultiStepLR``). ``state_dict`` holds the milestones as a sorted list."""

    _fields = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1) -> None:
        self.milestones, self.gamma = milestones, gamma
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        fn = self._name
        ms = self.milestones
        if isinstance(ms, Mapping):  # the Counter itself
            ms = list(Counter(ms).elements())
        if isinstance(ms, (str, bytes)) or not isinstance(ms, (Sequence, set, frozenset, Counter)):
            raise TypeError(f"{fn}: milestones must be a list of ints, got {type(ms).__name__}")
        self.milestones = Counter(_validate.integer(fn, "milestones[i]", m, lo=0) for m in ms)
        self.gamma = _validate.number(fn, "gamma", self.gamma, lo=0.0)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"milestones": sorted(self.milestones.elements())}

    def _chained(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return [self._lr]
        return [self._lr * self.gamma ** self.milestones[self.last_epoch]]

    def _closed_form(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [self.base_lrs[0] * self.gamma ** bisect_right(milestones, self.last_epoch)]


class ConstantLR(Scheduler):
    """``lr * factor`` for the first ``total_iters`` steps, then ``lr`` (torch's ``ConstantLR``)."""

    _fields = ("factor", "total_iters")

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1) -> None:
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        self.factor = _validate.number(self._name, "factor", self.factor, lo=0.0, hi=1.0, lo_open=True)
        self.total_iters = _validate.integer(self._name, "total_iters", self.total_iters, lo=0)

    def _chained(self) -> list[float]:
        if self.last_epoch == 0:
            return [self._lr * self.factor]
        if self.last_epoch != self.total_iters:
            return [self._lr]
        return [self._lr * (1.0 / self.factor)]

    def _closed_form(self) -> list[float]:
        return [self.base_lrs[0] * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))]


class LinearLR(Scheduler):
    """The rate's factor goes linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps (torch's ``LinearLR``; a warm-up with the defaults)."""

    _fields = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1) -> None:
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        fn = self._name
        self.start_factor = _validate.number(fn, "start_factor", self.start_factor, lo=0.0, hi=1.0, lo_open=True)
        self.end_factor = _validate.number(fn, "end_factor", self.end_factor, lo=0.0, hi=1.0)
        self.total_iters = _validate.integer(fn, "total_iters", self.total_iters, lo=1)

    def _chained(self) -> list[float]:
        if self.last_epoch == 0:
            return [self._lr * self.start_factor]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [self._lr]
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return [self._lr * (1.0 + (e - s) / (n * s + (self.last_epoch - 1) * (e - s)))]

    def _closed_form(self) -> list[float]:
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return [self.base_lrs[0] * (s + (e - s) * min(n, self.last_epoch) / n)]


class ExponentialLR(Scheduler):
    """``lr *= gamma`` every step (torch's ``ExponentialLR``)."""

    _fields = ("gamma",)

    def __init__(self, optimizer, gamma, last_epoch=-1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        self.gamma = _validate.number(self._name, "gamma", self.gamma, lo=0.0)

    def _chained(self) -> list[float]:
        if self._is_initial:
            return [self._lr]
        return [self._lr * self.gamma]

    def _closed_form(self) -> list[float]:
        return [self.base_lrs[0] * self.gamma**self.last_epoch]


class PolynomialLR(Scheduler):
    """``base_lr * (1 - last_epoch / total_iters) ** power`` until ``total_iters`` (torch's
    ``PolynomialLR``, by its ratio of successive factors)."""

    _fields = ("total_iters", "power")

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1) -> None:
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        self.total_iters = _validate.integer(self._name, "total_iters", self.total_iters, lo=1)
        self.power = _validate.number(self._name, "power", self.power, lo=0.0)

    def _chained(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return [self._lr]
        n = self.total_iters
        decay = ((1.0 - self.last_epoch / n) / (1.0 - (self.last_epoch - 1) / n)) ** self.power
        return [self._lr * decay]

    def _closed_form(self) -> list[float]:
        n = self.total_iters
        return [self.base_lrs[0] * (1.0 - min(n, self.last_epoch) / n) ** self.power]


class CosineAnnealingLR(Scheduler):
    """Cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps, then back up (torch's
    ``CosineAnnealingLR``, by its recurrence: it composes with other schedulers as torch's)."""

    _fields = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        self.T_max = _validate.integer(self._name, "T_max", self.T_max, lo=1)
        self.eta_min = _validate.number(self._name, "eta_min", self.eta_min, lo=0.0)

    def _chained(self) -> list[float]:
        base, eta_min, t, n = self.base_lrs[0], self.eta_min, self.last_epoch, self.T_max
        if self._is_initial:
            return [self._lr]
        if self._step_count == 1 and t > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / n)) / 2]
        if (t - 1 - n) % (2 * n) == 0:
            return [self._lr + (base - eta_min) * (1 - math.cos(math.pi / n)) / 2]
        return [
            (1 + math.cos(math.pi * t / n)) / (1 + math.cos(math.pi * (t - 1) / n)) * (self._lr - eta_min) + eta_min
        ]

    def _closed_form(self) -> list[float]:
        base, eta_min = self.base_lrs[0], self.eta_min
        return [eta_min + (base - eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2]


class CosineAnnealingWarmRestarts(Scheduler):
    """SGDR: cosine from ``base_lr`` to ``eta_min`` over ``T_i`` steps, restarting with
    ``T_i *= T_mult`` (torch's ``CosineAnnealingWarmRestarts``). ``step(epoch)`` takes a
    fractional epoch, as torch's (``step(epoch + i / iters)`` within an epoch)."""

    _fields = ("T_0", "T_i", "T_mult", "eta_min", "T_cur")

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1) -> None:
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        self.T_i = T_0
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _check(self) -> None:
        fn = self._name
        self.T_0 = _validate.integer(fn, "T_0", self.T_0, lo=1)
        self.T_mult = _validate.integer(fn, "T_mult", self.T_mult, lo=1)
        self.eta_min = _validate.number(fn, "eta_min", self.eta_min, lo=0.0)
        self.T_i = _validate.number(fn, "T_i", self.T_i, lo=1.0)
        if isinstance(self.T_i, float) and self.T_i.is_integer():
            self.T_i = int(self.T_i)
        self.T_cur = _validate.number(fn, "T_cur", self.T_cur, lo=-1.0)
        if self.T_cur.is_integer():
            self.T_cur = int(self.T_cur)

    def _chained(self) -> list[float]:
        base, eta_min = self.base_lrs[0], self.eta_min
        return [eta_min + (base - eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2]

    def step(self, epoch=None) -> None:
        """Advance one step, or go to ``epoch`` (a number >= 0, fractional allowed)."""
        if epoch is not None:
            epoch = _validate.number(f"{self._name}.step", "epoch", epoch, lo=0.0)
            if epoch.is_integer():
                epoch = int(epoch)
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** (n)
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        _set_lr(self.optimizer, self._chained()[0])
        self._last_lr = [float(self.optimizer.learning_rate)]


class OneCycleLR(Scheduler):
    """The 1cycle policy (torch's ``OneCycleLR``): from ``max_lr / div_factor`` up to ``max_lr``
    over ``pct_start`` of ``total_steps``, then down to ``initial_lr / final_div_factor``
    (``three_phase=True``: back to the initial rate first). With ``cycle_momentum`` it cycles,
    inversely, the optimizer's ``beta1`` or, if it has none, its ``momentum``, between
    ``max_momentum`` and ``base_momentum`` (both in [0, 1)). Stepping past ``total_steps``
    raises ``ValueError`` and changes nothing. Step ``total_steps`` itself extrapolates the last
    phase one step past its end, as torch's; where that goes below zero (``'linear'``), the rate
    is ``0.0``."""

    _fields = (
        "total_steps",
        "pct_start",
        "anneal_strategy",
        "cycle_momentum",
        "base_momentum",
        "max_momentum",
        "div_factor",
        "final_div_factor",
        "three_phase",
        "initial_lr",
        "max_lr",
        "min_lr",
    )

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps=None,
        epochs=None,
        steps_per_epoch=None,
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        last_epoch=-1,
    ) -> None:
        fn = self._name
        _optimizer(fn, optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"{fn}: total_steps, or epochs and steps_per_epoch, must be given, got neither")
            epochs = _validate.integer(fn, "epochs", epochs, lo=1)
            total_steps = epochs * _validate.integer(fn, "steps_per_epoch", steps_per_epoch, lo=1)
        self.total_steps, self.pct_start, self.anneal_strategy = total_steps, pct_start, anneal_strategy
        self.cycle_momentum, self.three_phase = cycle_momentum, three_phase
        self.base_momentum, self.max_momentum = (
            _one(fn, "base_momentum", base_momentum),
            _one(fn, "max_momentum", max_momentum),
        )
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.max_lr = _one(fn, "max_lr", max_lr)
        self.initial_lr = self.min_lr = 0.0  # set by _check from max_lr and the factors
        self._momentum = self._momentum_name(optimizer) if cycle_momentum else None
        self._fresh = last_epoch == -1
        self.optimizer = optimizer
        super().__init__(optimizer, last_epoch)

    def _momentum_name(self, optimizer) -> str:
        for name in ("beta1", "momentum"):
            if hasattr(optimizer, name):
                return name
        raise ValueError(
            f"{self._name}: optimizer must have beta1 or momentum when cycle_momentum=True, "
            f"got a {type(optimizer).__name__}"
        )

    def _check(self) -> None:
        fn = self._name
        self.total_steps = _validate.integer(fn, "total_steps", self.total_steps, lo=1)
        if not isinstance(self.pct_start, float):
            raise TypeError(f"{fn}: pct_start must be a float, got {type(self.pct_start).__name__}")
        self.pct_start = _validate.number(fn, "pct_start", self.pct_start, lo=0.0, hi=1.0)
        self.anneal_strategy = _validate.choice(fn, "anneal_strategy", self.anneal_strategy, ("cos", "linear"))
        self.cycle_momentum = _validate.flag(fn, "cycle_momentum", self.cycle_momentum)
        self.three_phase = _validate.flag(fn, "three_phase", self.three_phase)
        self.base_momentum = _validate.number(fn, "base_momentum", self.base_momentum, lo=0.0, hi=1.0, hi_open=True)
        self.max_momentum = _validate.number(fn, "max_momentum", self.max_momentum, lo=0.0, hi=1.0, hi_open=True)
        self.div_factor = _validate.number(fn, "div_factor", self.div_factor, lo=0.0, lo_open=True)
        self.final_div_factor = _validate.number(fn, "final_div_factor", self.final_div_factor, lo=0.0, lo_open=True)
        self.max_lr = _validate.number(fn, "max_lr", self.max_lr, lo=0.0)
        # torch's group["initial_lr"], ["max_lr"], ["min_lr"]
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        if self.cycle_momentum:
            self._momentum = self._momentum_name(self.optimizer)

    def _initial_lr(self, optimizer) -> float:
        return self.initial_lr

    def _initial_step(self) -> None:
        if self._fresh:  # what torch's constructor writes into the groups before its first step
            self._fresh = False
            _initial_lrs[self.optimizer] = self.initial_lr  # overwritten, not kept as other schedulers do
            self.base_lrs = [self.initial_lr]
            if self._momentum is not None:
                setattr(self.optimizer, self._momentum, self.max_momentum)
        super()._initial_step()

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        n, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [
                (float(pct * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        return [
            (float(pct * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def step(self) -> None:
        if self.last_epoch + 1 > self.total_steps:
            raise ValueError(
                f"{self._name}.step: the step number must be at most total_steps={self.total_steps}, "
                f"got step {self.last_epoch + 1}"
            )
        super().step()

    def _chained(self) -> list[float]:
        t = self.last_epoch
        start = 0.0
        phases = self._phases()
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                lr = self._anneal(getattr(self, lr0), getattr(self, lr1), pct)
                if self._momentum is not None:
                    setattr(self.optimizer, self._momentum, self._anneal(getattr(self, m0), getattr(self, m1), pct))
                return [lr]
            start = end
        raise AssertionError("unreachable: the last phase always matches")


class SequentialLR(Scheduler):
    """Runs ``schedulers`` one after the other, switching at ``milestones`` (torch's
    ``SequentialLR``): at a milestone the next scheduler restarts from its step 0 by its closed
    form. ``state_dict`` holds each scheduler's."""

    _fields = ("_milestones",)

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1) -> None:
        fn = self._name
        _optimizer(fn, optimizer)
        schedulers = self._children(fn, optimizer, schedulers)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise TypeError(f"{fn}: milestones must be a list of ints, got {type(milestones).__name__}")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"{fn}: milestones must have one entry fewer than schedulers ({len(schedulers) - 1}), "
                f"got {len(milestones)}"
            )
        last_epoch = _validate.integer(fn, "last_epoch", last_epoch, lo=-1)
        self._milestones = [_validate.integer(fn, "milestones[i]", m, lo=0) for m in milestones]
        if optimizer not in _initial_lrs:
            raise ValueError(f"{fn}: schedulers must have been made on optimizer, got none that recorded its rate")
        self._schedulers = schedulers
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        _set_lr(optimizer, _initial_lrs[optimizer])  # back to the initial rate
        for s in schedulers:  # undo the constructors' initial steps
            _undo(s)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    @staticmethod
    def _children(fn: str, optimizer, schedulers) -> list[Scheduler]:
        if isinstance(schedulers, (str, bytes)) or not isinstance(schedulers, Sequence) or not schedulers:
            raise ValueError(f"{fn}: schedulers must be a non-empty list of schedulers, got {schedulers!r:.80}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, Scheduler) or isinstance(s, ReduceLROnPlateau):
                raise TypeError(
                    f"{fn}: schedulers[{i}] must be a gradfast.schedules scheduler other than "
                    f"ReduceLROnPlateau (its step needs a metric), got {type(s).__name__}"
                )
            if s.optimizer is not optimizer:
                raise ValueError(f"{fn}: schedulers[{i}] must drive optimizer, got one of another optimizer")
        return list(schedulers)

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_epoch": self.last_epoch,
            "_last_lr": list(self._last_lr),
            "_milestones": list(self._milestones),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def _prepare(self, d: object) -> Callable[[], None]:
        fn = f"{self._name}.load_state_dict"
        d = _validate.mapping(fn, "state_dict", d, "values")
        children = d.get("_schedulers")
        if not isinstance(children, (list, tuple)) or len(children) != len(self._schedulers):
            n = len(self._schedulers)
            raise ValueError(f"{fn}: state_dict['_schedulers'] must be a list of {n} states, got {children!r:.80}")
        commits = [s._prepare(c) for s, c in zip(self._schedulers, children)]
        own = _expect_keys(fn, d, ("last_epoch", "_last_lr", "_milestones", "_schedulers"))
        ms = own["_milestones"]
        if not isinstance(ms, (list, tuple)) or len(ms) != len(self._milestones):
            raise ValueError(
                f"{fn}: state_dict['_milestones'] must be a list of {len(self._milestones)} ints, got {ms!r:.80}"
            )
        values = {
            "_milestones": [_validate.integer(fn, "state_dict['_milestones'][i]", m, lo=0) for m in ms],
            "last_epoch": _validate.integer(fn, "state_dict['last_epoch']", own["last_epoch"], lo=-1),
            "_last_lr": _float_list(fn, "state_dict['_last_lr']", own["_last_lr"]),
        }

        def commit() -> None:
            for c in commits:
                c()
            self.__dict__.update(values)

        return commit


class ChainedScheduler(Scheduler):
    """Steps every scheduler of ``schedulers`` at each ``step()`` (torch's ``ChainedScheduler``):
    their chained forms compose, e.g. a ``ConstantLR`` warm-up over an ``ExponentialLR``."""

    def __init__(self, schedulers, optimizer=None) -> None:
        fn = self._name
        if optimizer is None and isinstance(schedulers, Sequence) and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _optimizer(fn, optimizer)
        self._schedulers = SequentialLR._children(fn, optimizer, schedulers)
        self.optimizer = optimizer
        self._last_lr = [float(optimizer.learning_rate)]

    def step(self) -> None:
        for s in self._schedulers:
            s.step()
        self._last_lr = [float(self.optimizer.learning_rate)]

    def state_dict(self) -> dict[str, Any]:
        return {"_last_lr": list(self._last_lr), "_schedulers": [s.state_dict() for s in self._schedulers]}

    def _prepare(self, d: object) -> Callable[[], None]:
        fn = f"{self._name}.load_state_dict"
        d = _validate.mapping(fn, "state_dict", d, "values")
        own = _expect_keys(fn, d, ("_last_lr", "_schedulers"))
        children = own["_schedulers"]
        if not isinstance(children, (list, tuple)) or len(children) != len(self._schedulers):
            n = len(self._schedulers)
            raise ValueError(f"{fn}: state_dict['_schedulers'] must be a list of {n} states, got {children!r:.80}")
        commits = [s._prepare(c) for s, c in zip(self._schedulers, children)]
        last = _float_list(fn, "state_dict['_last_lr']", own["_last_lr"])

        def commit() -> None:
            for c in commits:
                c()
            self._last_lr = last

        return commit


def _expect_keys(fn: str, d: Mapping[str, Any], keys: tuple[str, ...]) -> Mapping[str, Any]:
    missing = [k for k in keys if k not in d]
    extra = [k for k in d if k not in keys]
    if missing or extra:
        raise ValueError(
            f"{fn}: state_dict must have the keys {', '.join(keys)}, "
            f"got {'missing ' + repr(missing[0]) if missing else 'extra ' + repr(extra[0])}"
        )
    return d


def _undo(s: Scheduler) -> None:
    """torch's ``SequentialLR.recursive_undo``: one step back for every scheduler inside."""
    if hasattr(s, "_schedulers"):
        for child in s._schedulers:
            _undo(child)
    else:
        s.last_epoch -= 1


class ReduceLROnPlateau(Scheduler):
    """``lr = max(lr * factor, min_lr)`` once ``metric`` has not improved for more than
    ``patience`` steps (torch's ``ReduceLROnPlateau``: ``mode`` ``'min'``/``'max'``,
    ``threshold_mode`` ``'rel'``/``'abs'``, ``cooldown`` steps without counting after a cut, a
    cut smaller than ``eps`` skipped). It does not set the rate in its constructor (nor does
    torch's); ``.step(metric)`` takes the monitored number."""

    _common = ("last_epoch", "_last_lr")
    _fields = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lrs",
        "eps",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
    )

    def __init__(
        self,
        optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0,
        eps=1e-8,
    ) -> None:
        fn = self._name
        self.optimizer = _optimizer(fn, optimizer)
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.min_lrs: list[Any] = [_one(fn, "min_lr", min_lr)]
        self.best, self.num_bad_epochs, self.cooldown_counter = 0.0, 0, 0
        self._check()
        self.best = self.mode_worse
        self.last_epoch = 0
        self._last_lr = [float(optimizer.learning_rate)]

    @property
    def mode_worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _check(self) -> None:
        fn = self._name
        self.mode = _validate.choice(fn, "mode", self.mode, ("min", "max"))
        self.threshold_mode = _validate.choice(fn, "threshold_mode", self.threshold_mode, ("rel", "abs"))
        self.factor = _validate.number(fn, "factor", self.factor, lo=0.0, hi=1.0, hi_open=True)
        self.patience = _validate.integer(fn, "patience", self.patience, lo=0)
        self.threshold = _validate.number(fn, "threshold", self.threshold, lo=0.0)
        self.cooldown = _validate.integer(fn, "cooldown", self.cooldown, lo=0)
        self.min_lrs = _float_list(fn, "min_lr", self.min_lrs)
        self.eps = _validate.number(fn, "eps", self.eps, lo=0.0)
        self.best = _validate.real(fn, "best", self.best)
        self.num_bad_epochs = _validate.integer(fn, "num_bad_epochs", self.num_bad_epochs, lo=0)
        self.cooldown_counter = _validate.integer(fn, "cooldown_counter", self.cooldown_counter, lo=0)

    def _check_common(self, fn: str, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "last_epoch": _validate.integer(fn, "state_dict['last_epoch']", d["last_epoch"], lo=0),
            "_last_lr": _float_list(fn, "state_dict['_last_lr']", d["_last_lr"]),
        }

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics) -> None:  # type: ignore[override]
        """Record ``metrics`` (a number) for this step, cutting the rate on a plateau."""
        current = _validate.real(f"{self._name}.step", "metrics", metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.learning_rate)
            new = max(old * self.factor, self.min_lrs[0])
            if old - new > self.eps:
                _set_lr(self.optimizer, new)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(self.optimizer.learning_rate)]
