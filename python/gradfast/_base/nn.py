"""Declarations of the layers: hyper-parameters, attributes, docstrings.

The siblings that subclass these (``gradfast.nn`` in Rust, ``gradfast.reference.nn`` in NumPy)
implement ``forward`` and ``backward``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import _validate
from .locked import Locked
from .optimizer import Checked, Hyper


class _Layer(Locked):
    """What the layers share: their hyper-parameters handed to Rust as one ``_core`` object,
    built when a value changes (``Hyper`` drops the cached one on assignment), and a lock that
    serializes the calls on one layer object (a second thread waits), so that the running
    statistics, the mask stream and what backward reads stay those of whole calls."""

    #: the ``_core`` class that carries the hyper-parameters, for Rust-backed classes
    _hyper_class: ClassVar[Any] = None
    _hyper_names: ClassVar[tuple[str, ...]] = ()
    _packed: Any = None
    _not_copied: ClassVar[tuple[str, ...]] = ("_lock", "_packed")

    def _pack(self):
        packed = self._packed = self._hyper_class(**{h: getattr(self, h) for h in self._hyper_names})
        return packed


class BatchNormBase(_Layer):
    """Batch normalization with learnable ``gamma``/``beta`` and running statistics.

    Statistics are per channel (axis 1) over every other axis; ``n = N`` or ``N * L``.
    Training forward::

        mean = sum(x) / n                 var = sum((x - mean)^2) / n       (biased)
        xhat = (x - mean) / sqrt(var + eps)                out = gamma * xhat + beta
        running_mean = momentum * mean + (1 - momentum) * running_mean
        running_var  = momentum * sum((x - mean)^2) / (n - 1) + (1 - momentum) * running_var

    (running statistics updated in place, with the unbiased variance, as PyTorch). Eval
    forward uses ``running_mean``/``running_var`` in place of ``mean``/``var``. Training
    with ``n < 2`` raises ``ValueError`` (PyTorch: "Expected more than 1 value per
    channel when training").

    ``backward(g)`` returns ``grad_x`` and sets ``grad_gamma = sum(g * xhat)``,
    ``grad_beta = sum(g)``. After a training forward
    ``grad_x = gamma / sqrt(var + eps) / n * (n * g - grad_beta - xhat * grad_gamma)``
    (the batch statistics depend on x); after an eval forward
    ``grad_x = g * gamma / sqrt(running_var + eps)``. ``gamma`` and the statistics are the
    ones the last forward used. Like PyTorch, the layer keeps for backward the ``x`` of the
    last forward (not a copy: do not modify it in place in between) and, per channel, the
    mean and ``1 / sqrt(var + eps)``, never the normalized input.

    Precision: ``x`` must have the layer's dtype; all arithmetic (statistics, normalization,
    running-statistic updates, backward) is done in float64 and each result is rounded once
    to the layer's dtype. ``num_features`` and ``dtype`` are fixed at construction.

    Deviations from the original design: the original code updated ``running_var`` with the
    biased batch variance (we use the unbiased one, as PyTorch), took statistics over axis 0
    only (wrong for ``(N, C, L)``), rebound the running arrays instead of updating them in
    place, had no ``n < 2`` check, and had no backward.
    """

    _hyper_names = ("num_features", "eps", "momentum", "float64")
    # a copy (copy, deepcopy, pickle) keeps the parameters and statistics; it runs a forward
    # before its first backward
    _not_copied = (*_Layer._not_copied, "_cache")
    eps = Hyper(lo=0.0, lo_open=True)  # eps = 0 divides by zero on constant input (torch needs > 0 too)
    momentum = Hyper(lo=0.0, hi=1.0)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float64) -> None:
        super().__init__()
        fn = "BatchNorm"
        self._num_features = c = _validate.integer(fn, "num_features", num_features, lo=1)
        self.eps = eps
        self.momentum = momentum
        self._dtype = dt = _validate.float_dtype_arg(fn, dtype)
        self.gamma = np.ones(c, dtype=dt)
        self.beta = np.zeros(c, dtype=dt)
        self.running_mean = np.zeros(c, dtype=dt)
        self.running_var = np.ones(c, dtype=dt)
        self.grad_gamma: np.ndarray | None = None
        self.grad_beta: np.ndarray | None = None
        #: what backward needs of the last forward (its form is the implementation's)
        self._cache: Any = None

    def __setstate__(self, d: dict[str, Any]) -> None:
        super().__setstate__(d)
        self._cache = None

    @property
    def num_features(self) -> int:
        """The number of channels ``C`` (read-only)."""
        return self._num_features

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters, the statistics and the inputs (read-only)."""
        return self._dtype

    @property
    def float64(self) -> bool:
        """Whether the layer's dtype is float64."""
        return self._dtype == np.float64

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        """Normalize ``x`` (``(N, C)`` or ``(N, C, L)``, the layer's dtype) per channel: with
        the batch statistics, updating the running ones, when ``training``; with the running
        statistics otherwise. Returns a new array."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """The gradient with respect to the last forward's ``x``, from ``grad_output`` (its
        output's shape and dtype); sets ``grad_gamma`` and ``grad_beta``. Needs a forward first."""
        raise NotImplementedError


def _resolve_seed(seed: object) -> int:
    """A seed in ``[0, 2**64)``; None draws a fresh one."""
    # imported here: gradfast.reference imports this module while it loads
    from ..reference._random import resolve_seed

    return resolve_seed(seed, "Dropout")


class DropoutBase(_Layer):
    """Inverted dropout: in training each element is kept with probability ``1 - p``
    (``p = drop_rate``) and kept values are scaled by ``1 / (1 - p)``; eval is the identity.

    Mask: the ``k``-th training-mode ``forward`` (``k = 0, 1, 2, ...``, counted in
    ``num_training_calls``) draws ``u = _random.uniform(seed, k, x.size)`` in C order and
    keeps element ``i`` iff ``u[i] >= p``. ``mask[i]`` is ``scale`` if kept else ``0``,
    in ``x``'s dtype, where ``scale = 1 / (1 - p)`` is formed in float64 and rounded once
    to that dtype; the output is ``x * mask`` (so a dropped NaN or inf gives NaN, as in
    PyTorch). ``backward`` returns ``grad_output * mask`` with the mask of the last
    forward, or a copy of ``grad_output`` if that forward was in eval mode. Both return new
    arrays. ``seed=None`` draws one fresh seed at construction.

    Between forward and backward the layer keeps the mask as one byte per element
    (``kept``, a bool array); ``mask`` builds the float mask from it on request.

    Deviations from the original design: the original code used ``np.random``'s global state,
    kept ``u > p`` (we keep ``u >= p``, so ``p = 0`` keeps everything and the keep probability
    is exactly ``1 - p``), built a float64 mask whatever ``x``'s dtype, returned ``x`` itself in
    eval, and its ``backward`` crashed before any forward and reused a stale training mask after
    an eval forward.
    """

    _hyper_names = ("drop_rate",)
    drop_rate = Hyper(lo=0.0, hi=1.0, hi_open=True)
    seed = Checked(lambda obj, v: _resolve_seed(v))

    def __init__(self, drop_rate=0.5, *, seed=None) -> None:
        super().__init__()
        self.drop_rate = drop_rate
        self.seed = seed
        #: number of training-mode forward calls so far: the stream of the next mask
        self.num_training_calls = 0
        #: which elements the last training forward kept (None before it and after an eval forward)
        self.kept: np.ndarray | None = None
        # (shape, dtype) of the last forward's input and the drop rate it used, None before any forward
        self._last: tuple[tuple[int, ...], np.dtype, float] | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """The float mask of the last training forward: the scale where kept, else 0."""
        if self.kept is None or self._last is None:
            return None
        _, dtype, p = self._last
        t = dtype.type
        return np.where(self.kept, t(1.0 / (1.0 - p)), t(0.0))

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        """``x`` with a fresh mask applied when ``training`` (the next stream of ``seed``), or a
        copy of ``x`` otherwise. Returns a new array of ``x``'s shape and dtype."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """``grad_output`` times the last training forward's mask (a copy of it after an eval
        forward). Needs a forward first."""
        raise NotImplementedError
