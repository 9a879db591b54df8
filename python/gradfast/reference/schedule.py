"""Reference learning-rate schedules: closed forms of the epoch, returned as Python floats.

``LRScheduler`` is stateless apart from ``initial_lr`` (the peak rate ``eta_max``): every
method maps an epoch (an int or float >= 0; fractional epochs give per-iteration schedules)
to a rate, so calling it twice with the same epoch gives the same number and resuming needs
no saved state. The arithmetic is double precision (``math``), in the order written below.

To have a schedule drive an optimizer (set its ``learning_rate`` at every step, with
``state_dict``), use ``gradfast.schedules``: PyTorch's ``lr_scheduler`` classes.
"""

from __future__ import annotations

import math
from typing import Callable, Union

from .. import _validate
from .._base.optimizer import Hyper

Schedule = Union[str, Callable[..., float]]


class LRScheduler:
    """Learning-rate schedules around the peak rate ``initial_lr`` (settable, finite, >= 0).

    Closed forms of the epoch; ``gradfast.schedules`` has the classes that step an optimizer.

    Decays, all equal to ``initial_lr`` at epoch 0 (PyTorch's closed forms, ``base_lr = initial_lr``):

    - ``step_decay``: ``StepLR``; ``exponential_decay``: ``ExponentialLR``;
    - ``cosine_annealing``: ``CosineAnnealingLR``;
    - ``cosine_warm_restarts``: ``CosineAnnealingWarmRestarts`` (SGDR).

    Warm-up: ``linear_warmup`` ramps up to ``initial_lr`` and stays there (``LinearLR``), and
    ``with_warmup(epoch, warmup_epochs, schedule, **kwargs)`` chains the ramp into any decay,
    which restarts its clock when the ramp ends (as ``SequentialLR`` does)::

        s = LRScheduler(0.1)
        lr = s.with_warmup(epoch, 5, "cosine_annealing", total_epochs=95)   # 5 + 95 epochs
    """

    initial_lr = Hyper(lo=0.0)

    def __init__(self, initial_lr=0.1) -> None:
        self.initial_lr = initial_lr

    def _epoch(self, method: str, epoch) -> float:
        return _validate.number(f"LRScheduler.{method}", "epoch", epoch, lo=0.0)

    def step_decay(self, epoch, drop_rate=0.5, epochs_drop=10) -> float:
        """``initial_lr * drop_rate ** floor(epoch / epochs_drop)``.

        ``drop_rate`` in [0, 1], ``epochs_drop`` >= 1 (an int).
        """
        fn = "LRScheduler.step_decay"
        e = self._epoch("step_decay", epoch)
        gamma = _validate.number(fn, "drop_rate", drop_rate, lo=0.0, hi=1.0)
        size = _validate.integer(fn, "epochs_drop", epochs_drop, lo=1)
        return self.initial_lr * gamma ** (e // size)

    def exponential_decay(self, epoch, gamma) -> float:
        """``initial_lr * gamma ** epoch``; ``gamma`` in [0, 1]."""
        e = self._epoch("exponential_decay", epoch)
        g = _validate.number("LRScheduler.exponential_decay", "gamma", gamma, lo=0.0, hi=1.0)
        return self.initial_lr * g**e

    def cosine_annealing(self, epoch, total_epochs, eta_min=0) -> float:
        """``eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / total_epochs)) / 2``.

        ``total_epochs`` >= 1, ``eta_min`` >= 0. Past ``total_epochs`` the cosine goes on (rising
        again), as PyTorch's closed form does; ``cosine_warm_restarts`` restarts instead.
        """
        fn = "LRScheduler.cosine_annealing"
        e = self._epoch("cosine_annealing", epoch)
        t_max = _validate.integer(fn, "total_epochs", total_epochs, lo=1)
        eta_min = _validate.number(fn, "eta_min", eta_min, lo=0.0)
        return _cosine(self.initial_lr, eta_min, e, t_max)

    def cosine_warm_restarts(self, epoch, T_0, T_mult=1, eta_min=0) -> float:  # noqa: N803 (torch's names)
        """SGDR: cosine annealing over cycles of ``T_0``, ``T_0*T_mult``, ``T_0*T_mult**2``, ... epochs.

        With ``T_cur`` the epochs since the current cycle began and ``T_i`` its length,
        ``eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``; the rate jumps back
        to ``initial_lr`` at each restart. ``T_0`` >= 1 and ``T_mult`` >= 1 are ints.
        PyTorch locates the cycle with a floating-point logarithm, which can land in the wrong
        cycle exactly at a restart (e.g. ``T_mult=10``); here cycles are subtracted exactly.
        """
        fn = "LRScheduler.cosine_warm_restarts"
        e = self._epoch("cosine_warm_restarts", epoch)
        t_0 = _validate.integer(fn, "T_0", T_0, lo=1)
        t_mult = _validate.integer(fn, "T_mult", T_mult, lo=1)
        eta_min = _validate.number(fn, "eta_min", eta_min, lo=0.0)
        t_i = t_0
        if t_mult == 1:
            t_cur = e % t_0
        else:
            # The cycle lengths grow geometrically, so this loop runs O(log epoch) times.
            t_cur = e
            while t_cur >= t_i:
                t_cur -= t_i
                t_i *= t_mult
        # the cycle holding a huge epoch can be longer than a float holds: t_cur / t_i is 0 then
        return _cosine(self.initial_lr, eta_min, t_cur, t_i if t_i < 2**1023 else math.inf)

    def linear_warmup(self, epoch, warmup_epochs, start_factor=0.0) -> float:
        """``initial_lr * (start_factor + (1 - start_factor) * min(epoch, warmup_epochs) / warmup_epochs)``.

        Rises from ``start_factor * initial_lr`` at epoch 0 to ``initial_lr`` at ``warmup_epochs``
        and stays there (PyTorch's ``LinearLR`` with ``end_factor=1``). ``warmup_epochs`` >= 0
        (0: no ramp), ``start_factor`` in [0, 1].
        """
        fn = "LRScheduler.linear_warmup"
        e = self._epoch("linear_warmup", epoch)
        w = _validate.integer(fn, "warmup_epochs", warmup_epochs, lo=0)
        s = _validate.number(fn, "start_factor", start_factor, lo=0.0, hi=1.0)
        if e >= w:
            return self.initial_lr
        return self.initial_lr * (s + (1.0 - s) * e / w)

    def with_warmup(self, epoch, warmup_epochs, schedule: Schedule, *, start_factor=0.0, **schedule_kwargs) -> float:
        """Ramp with ``linear_warmup``, then decay with ``schedule``.

        ``linear_warmup(epoch, warmup_epochs, start_factor)`` while ``epoch < warmup_epochs``,
        then ``schedule(epoch - warmup_epochs, **schedule_kwargs)``.

        ``schedule`` is the name of one of the decays above (``"step_decay"``,
        ``"exponential_decay"``, ``"cosine_annealing"``, ``"cosine_warm_restarts"``) or any
        callable ``f(epoch, **schedule_kwargs) -> float``. It is evaluated on every call (at
        ``max(epoch - warmup_epochs, 0)``), so bad decay arguments raise even during the ramp.
        The built-in decays start at ``initial_lr``, so the chained rate is continuous.
        """
        fn = "LRScheduler.with_warmup"
        e = self._epoch("with_warmup", epoch)
        if isinstance(schedule, str):
            if schedule not in _DECAYS:
                names = ", ".join(map(repr, _DECAYS))
                raise ValueError(f"{fn}: schedule must be one of {names} or a callable, got {schedule!r}")
            decay = getattr(self, schedule)
        elif callable(schedule):
            decay = schedule
        else:
            raise TypeError(f"{fn}: schedule must be a str or a callable, got {type(schedule).__name__}")
        warm = self.linear_warmup(e, warmup_epochs, start_factor)
        w = int(warmup_epochs)
        after = _validate.number(fn, "the schedule's rate", decay(max(e - w, 0.0), **schedule_kwargs), lo=0.0)
        return warm if e < w else after


_DECAYS = ("step_decay", "exponential_decay", "cosine_annealing", "cosine_warm_restarts")


def _cosine(eta_max: float, eta_min: float, t_cur: float, t_max: float) -> float:
    return eta_min + 0.5 * (eta_max - eta_min) * (1.0 + math.cos(math.pi * t_cur / t_max))
