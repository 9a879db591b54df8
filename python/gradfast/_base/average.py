"""Declaration of ``EMA``, the exponential moving average of the weights: its hyper-parameter,
its state, the checks and ``state_dict`` both implementations share. The siblings implement
``_lerp`` (``gradfast.average`` in Rust, ``gradfast.reference.average`` in NumPy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validate
from .locked import Locked
from .optimizer import MAX_STEP, Hyper


def like_held(fn: str, name: str, d: object, held: Mapping | None, held_name: str) -> Mapping[Any, np.ndarray]:
    """``d`` (a dict argument named ``name``) checked: float arrays of one dtype, and when
    ``held`` (the arrays kept from earlier calls) is not None, its keys, shapes and dtype."""
    d = _validate.array_dict(fn, name, d)
    dtype = None
    for key, a in d.items():
        _validate.float_array(fn, f"{name}[{key!r}]", a)
        dtype = dtype or a.dtype
        _validate.same_dtype(fn, f"{name}[{key!r}]", a, dtype)
    if held is not None:
        _validate.matching_keys(fn, name, d, held_name, held)
        for key, h in held.items():
            _validate.like_state(fn, f"{name}[{key!r}]", d[key], h)
    return d


def copied(fn: str, name: str, loaded: Mapping) -> dict[Any, np.ndarray]:
    """C-contiguous copies of the arrays of ``loaded`` (``name`` of a ``load_state_dict``),
    float arrays of one dtype."""
    dtype = None
    arrays = {}
    for key, a in loaded.items():
        a = _validate.float_array(fn, f"{name}[{key!r}]", a)
        dtype = dtype or a.dtype
        _validate.same_dtype(fn, f"{name}[{key!r}]", a, dtype)
        arrays[key] = np.array(a, order="C", copy=True)
    return arrays


class EMABase(Locked):
    """An exponential moving average of a dict of weights, to evaluate with (torch's
    ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(decay)``).

    The first ``update(params)`` copies ``params``; every later one moves the average toward
    them in place, ``ema += (1 - decay) * (p - ema)``, with torch's ``lerp`` arithmetic: the
    weight ``w = 1 - decay`` rounded once to the arrays' dtype, ``ema + w * (p - ema)`` when
    ``w < 0.5``, else ``p - (p - ema) * (1 - w)`` (torch fuses the multiply-add on vectors;
    here it is rounded twice, so the last bit can differ from torch's). ``decay`` in [0, 1]
    (settable; 0 follows the weights, 1 freezes the first copy).

    ``averaged`` is the dict of averages (the arrays themselves: read, do not write);
    ``copy_to(params)`` writes them into ``params`` in place, e.g. to evaluate, and
    ``state_dict()`` / ``load_state_dict()`` save and resume it bitwise.
    """

    decay = Hyper(lo=0.0, hi=1.0)

    def __init__(self, decay=0.999) -> None:
        super().__init__()
        self.decay = decay
        self.n_averaged = 0
        self._averaged: dict[Any, np.ndarray] = {}

    @property
    def averaged(self) -> dict[Any, np.ndarray]:
        """The averaged weights, ``{key: array}`` (the live arrays; empty before the first update)."""
        return self._averaged

    def _check(self, fn: str, params) -> Mapping[Any, np.ndarray]:
        """``params`` against the averages: same keys, shapes, one float dtype."""
        return like_held(fn, "params", params, self._averaged if self.n_averaged else None, "the averaged weights")

    def update(self, params: Mapping[Any, np.ndarray]) -> None:
        """Fold ``params`` into the average (the first call copies them)."""
        fn = f"{type(self).__name__}.update"
        with self._lock:
            if self.n_averaged == 0:
                params = self._check(fn, params)
                self._averaged = {k: np.array(p, order="C", copy=True) for k, p in params.items()}
            else:
                self._lerp(fn, params, 1.0 - self.decay)
            self.n_averaged += 1

    def _lerp(self, fn: str, params, weight: float) -> None:
        """Check ``params`` against the averages (``_check``, and that no average shares memory
        with them), then move the averages toward them; the Rust binding checks in Rust."""
        raise NotImplementedError

    def _check_lerp(self, fn: str, params) -> Mapping[Any, np.ndarray]:
        params = self._check(fn, params)
        _validate.no_overlaps(fn, list(self._named()), [(f"params[{k!r}]", p) for k, p in params.items()])
        return params

    def copy_to(self, params: Mapping[Any, np.ndarray]) -> Mapping[Any, np.ndarray]:
        """Write the averages into ``params`` in place (same keys, shapes, dtype); returns ``params``."""
        fn = f"{type(self).__name__}.copy_to"
        with self._lock:
            if not self.n_averaged:
                raise ValueError(f"{fn}: the average must have seen an update, got none yet")
            params = self._check(fn, params)
            for key, p in params.items():
                _validate.float_array(fn, f"params[{key!r}]", p, writeable=True)
            _validate.no_overlaps(fn, [(f"params[{k!r}]", p) for k, p in params.items()], list(self._named()))
            for key, p in params.items():
                np.copyto(p, self._averaged[key])
        return params

    def _named(self):
        return ((f"averaged[{k!r}]", a) for k, a in self._averaged.items())

    def state_dict(self) -> dict[str, Any]:
        """``{"decay": float, "n_averaged": int, "averaged": {key: copy}}``."""
        with self._lock:
            return {
                "decay": self.decay,
                "n_averaged": self.n_averaged,
                "averaged": {k: a.copy() for k, a in self._averaged.items()},
            }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Replace the average with ``d``'s (copied), all checked first: a bad state raises and
        changes nothing."""
        fn = f"{type(self).__name__}.load_state_dict"
        if not isinstance(d, Mapping) or set(d) != {"decay", "n_averaged", "averaged"}:
            raise ValueError(f"{fn}: d must be a dict with keys 'decay', 'n_averaged', 'averaged', got {d!r:.80}")
        decay = _validate.number(fn, "d['decay']", d["decay"], lo=0.0, hi=1.0)
        n = _validate.integer(fn, "d['n_averaged']", d["n_averaged"], lo=0, hi=MAX_STEP)
        loaded = _validate.mapping(fn, "d['averaged']", d["averaged"], "arrays")
        if bool(loaded) != (n > 0):
            raise ValueError(
                f"{fn}: d must have averaged arrays exactly when n_averaged > 0, got n_averaged {n} "
                f"with {len(loaded)} arrays"
            )
        averaged = copied(fn, "d['averaged']", loaded)
        with self._lock:
            self.decay, self.n_averaged, self._averaged = decay, n, averaged


def sum_buffers(sums: dict, grads: Mapping) -> dict:
    """The buffers for a new cycle of sums of ``grads``: ``sums`` again when they have the same
    keys, shapes and dtypes, else new (uninitialized: the first call of a cycle copies)."""
    if sums.keys() == grads.keys() and all(
        s.shape == grads[k].shape and s.dtype == grads[k].dtype for k, s in sums.items()
    ):
        return sums
    return {k: np.empty(g.shape, g.dtype) for k, g in grads.items()}


class AccumulateBase(Locked):
    """Gradient accumulation on one process (``optax.MultiSteps``): wraps an optimizer and
    applies the mean of the gradients of every ``steps`` calls.

    ``update(params, gradients)`` adds ``gradients`` to sums kept in its own buffers (the first
    call of a cycle copies them); the ``steps``-th call divides the sums by ``steps`` in the
    same pass, calls ``optimizer.update(params, mean)`` and returns True; the others return
    False and leave ``params`` alone. The mean is the sum divided once (optax, by default,
    keeps a running mean, which rounds differently in the last bits). ``count`` is the number
    of calls summed in the current cycle. ``state_dict()`` holds the partial sums, the count
    and the wrapped optimizer's ``state_dict()``; ``load_state_dict`` resumes bitwise.

    A call is checked before anything is written (the gradients against the sums; on the
    last call of a cycle also ``params`` against the gradients); a last call that the wrapped
    optimizer still refuses drops the cycle's sums (they hold the mean by then).
    """

    def __init__(self, optimizer, steps: int) -> None:
        super().__init__()
        fn = type(self).__name__
        if not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"{fn}: optimizer must have an update(params, gradients) method, got {optimizer!r:.80}")
        self.optimizer = optimizer
        self.steps = _validate.integer(fn, "steps", steps, lo=1, hi=MAX_STEP)
        self.count = 0
        self._sums: dict[Any, np.ndarray] = {}

    #: Whether ``_accumulate`` checks ``gradients`` against the sums itself before writing (the
    #: Rust binding does), so that a call inside a cycle, which only sums, need not check first.
    _kernel_checks = False

    def _check(self, fn: str, gradients) -> Mapping[Any, np.ndarray]:
        """``gradients`` against the sums: same keys, shapes and dtype once a cycle has begun."""
        return like_held(fn, "gradients", gradients, self._sums if self.count else None, "the gradients summed so far")

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]) -> bool:
        """Add ``gradients`` to the sums; on every ``steps``-th call apply their mean with
        ``optimizer.update(params, mean)`` and return True, else return False."""
        fn = f"{type(self).__name__}.update"
        with self._lock:
            last = self.count + 1 == self.steps
            inside = 0 < self.count and not last
            grads = gradients if inside and self._kernel_checks else self._check(fn, gradients)
            if last:
                _validate.params_and_grads(fn, params, grads)
            if self.count == 0:
                self._sums = sum_buffers(self._sums, grads)
            sums = self._sums
            self._accumulate(fn, sums, grads, self.count == 0, float(self.steps) if last else 1.0)
            if not last:
                self.count += 1
                return False
            self.count = 0
            self.optimizer.update(params, sums)
            return True

    @staticmethod
    def _accumulate(fn: str, sums, gradients, first: bool, divisor: float) -> None:
        """``sums[k] = (gradients[k] if first else sums[k] + gradients[k]) / divisor``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """``{"steps": int, "count": int, "sums": {key: copy} (the partial sums, empty when
        count is 0), "optimizer": the wrapped optimizer's state_dict()}``."""
        with self._lock:
            return {
                "steps": self.steps,
                "count": self.count,
                "sums": {k: s.copy() for k, s in self._sums.items()} if self.count else {},
                "optimizer": self.optimizer.state_dict(),
            }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Resume from ``d`` (a ``state_dict()``): everything checked first, then the wrapped
        optimizer's state loaded (which checks its own), then the sums copied."""
        fn = f"{type(self).__name__}.load_state_dict"
        if not isinstance(d, Mapping) or set(d) != {"steps", "count", "sums", "optimizer"}:
            raise ValueError(f"{fn}: d must be a dict with keys 'steps', 'count', 'sums', 'optimizer', got {d!r:.80}")
        steps = _validate.integer(fn, "d['steps']", d["steps"], lo=1, hi=MAX_STEP)
        if steps != self.steps:
            raise ValueError(f"{fn}: d['steps'] must be {self.steps} (this accumulator's), got {steps}")
        count = _validate.integer(fn, "d['count']", d["count"], lo=0, hi=steps - 1)
        loaded = _validate.mapping(fn, "d['sums']", d["sums"], "arrays")
        if bool(loaded) != (count > 0):
            raise ValueError(
                f"{fn}: d must have partial sums exactly when count > 0, got count {count} with {len(loaded)} arrays"
            )
        sums = copied(fn, "d['sums']", loaded)
        with self._lock:
            self.optimizer.load_state_dict(d["optimizer"])
            self.count, self._sums = count, sums
