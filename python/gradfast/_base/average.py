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
        """``params`` against the averages: same keys, shapes, one float dtype, no overlap."""
        params = _validate.array_dict(fn, "params", params)
        dtype = None
        for key, p in params.items():
            _validate.float_array(fn, f"params[{key!r}]", p)
            dtype = dtype or p.dtype
            _validate.same_dtype(fn, f"params[{key!r}]", p, dtype)
        if self.n_averaged:
            _validate.matching_keys(fn, "params", params, "the averaged weights", self._averaged)
            for key, a in self._averaged.items():
                _validate.like_state(fn, f"params[{key!r}]", params[key], a)
        return params

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
        dtype = None
        averaged = {}
        for key, a in loaded.items():
            a = _validate.float_array(fn, f"d['averaged'][{key!r}]", a)
            dtype = dtype or a.dtype
            _validate.same_dtype(fn, f"d['averaged'][{key!r}]", a, dtype)
            averaged[key] = np.array(a, order="C", copy=True)
        with self._lock:
            self.decay, self.n_averaged, self._averaged = decay, n, averaged
