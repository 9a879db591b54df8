"""Reference inverted dropout with a counter-based, reproducible mask."""

from __future__ import annotations

import numpy as np

from . import _checks, _random
from ._optimizer import Hyper


def _flag(fn: str, name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


class Dropout:
    """Inverted dropout: in training each element is kept with probability ``1 - p``
    (``p = drop_rate``) and kept values are scaled by ``1 / (1 - p)``; eval is the identity.

    Mask: the ``k``-th training-mode ``forward`` (``k = 0, 1, 2, ...``, counted in
    ``num_training_calls``) draws ``u = _random.uniform(seed, k, x.size)`` in C order and
    keeps element ``i`` iff ``u[i] >= p``. ``mask[i]`` is ``scale`` if kept else ``0``,
    in ``x``'s dtype, where ``scale = 1 / (1 - p)`` is formed in float64 and rounded once
    to that dtype; the output is ``x * mask`` (so a dropped NaN or inf gives NaN, as in
    PyTorch). ``backward`` returns ``grad_output * mask`` with the mask of the last
    forward, or ``grad_output`` unchanged (a copy) if that forward was in eval mode.
    Both return new arrays. ``seed=None`` draws one fresh seed at construction.

    Seed deviations: the seed used ``np.random``'s global state, kept ``u > p`` (we keep
    ``u >= p``, so ``p = 0`` keeps everything and the keep probability is exactly
    ``1 - p``), built a float64 mask whatever ``x``'s dtype, returned ``x`` itself in eval,
    and its ``backward`` crashed before any forward and reused a stale training mask after
    an eval forward.
    """

    drop_rate = Hyper(lo=0.0, hi=1.0, hi_open=True)

    def __init__(self, drop_rate=0.5, *, seed=None) -> None:
        self.drop_rate = drop_rate
        self.seed = _random.resolve_seed(seed, "Dropout")
        #: number of training-mode forward calls so far: the stream of the next mask
        self.num_training_calls = 0
        #: the mask of the last training forward (None before it and after an eval forward)
        self.mask: np.ndarray | None = None
        # (shape, dtype) of the last forward's input, None before any forward
        self._last: tuple[tuple[int, ...], np.dtype] | None = None

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        fn = "Dropout.forward"
        _checks.float_array(fn, "x", x)
        training = _flag(fn, "training", training)
        if not training:
            self.mask = None
            self._last = (x.shape, x.dtype)
            return x.copy()
        p = self.drop_rate
        t = x.dtype.type
        u = _random.uniform(self.seed, self.num_training_calls, x.size).reshape(x.shape)
        mask = np.where(u >= p, t(1.0 / (1.0 - p)), t(0.0))
        with np.errstate(all="ignore"):
            out = x * mask
        self.num_training_calls += 1
        self.mask = mask
        self._last = (x.shape, x.dtype)
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        fn = "Dropout.backward"
        if self._last is None:
            raise ValueError(f"{fn}: forward must be called before backward, got no forward call yet")
        shape, dtype = self._last
        _checks.float_array(fn, "grad_output", grad_output)
        if grad_output.dtype != dtype:
            raise TypeError(
                f"{fn}: grad_output must have dtype {dtype} like the last forward's x, "
                f"got {grad_output.dtype}"
            )
        if grad_output.shape != shape:
            raise ValueError(
                f"{fn}: grad_output must have shape {shape} like the last forward's x, "
                f"got {grad_output.shape}"
            )
        if self.mask is None:
            return grad_output.copy()
        with np.errstate(all="ignore"):
            return grad_output * self.mask
