"""Declarations of the layers: hyper-parameters, attributes, state, docstrings.

The siblings that subclass these (``gradfast.nn`` in Rust, ``gradfast.reference.nn`` in NumPy)
implement ``forward`` and ``backward``.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from .. import _validate
from .optimizer import Hyper


class _LayerState:
    """The lock of a reference layer's calls (held with ``with``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc) -> None:
        self._lock.release()


class BatchNormState(_LayerState):
    """What a reference ``BatchNorm`` keeps between calls: the gradients of the last backward
    and ``cache``, what backward needs of the last forward. ``_core.BatchNormState`` is the
    same for ``gradfast.BatchNorm`` (its last forward held in Rust), committed by the binding
    before it returns."""

    def __init__(self, grad_gamma: np.ndarray | None = None, grad_beta: np.ndarray | None = None) -> None:
        super().__init__()
        self.grad_gamma, self.grad_beta = grad_gamma, grad_beta
        self.cache: Any = None


class DropoutState(_LayerState):
    """What a reference ``Dropout`` keeps between calls: its seed, the count of training
    forwards (the stream of the next mask), the last mask (``kept``, None after an eval
    forward) and ``last``, the ``(shape, dtype, drop_rate)`` of the last forward (None before
    any). ``_core.DropoutState`` is the same for ``gradfast.Dropout``, committed by the binding
    before it returns."""

    def __init__(self, seed: int, num_training_calls: int = 0, kept=None, last=None) -> None:
        super().__init__()
        self.seed, self.num_training_calls, self.kept, self.last = seed, num_training_calls, kept, last


class _Layer:
    """What the layers share: their hyper-parameters handed to Rust as one ``_core`` object,
    built when a value changes (``Hyper`` drops the cached one on assignment), and a state
    object (``self._state``, made by ``_new_state``) with the lock that serializes the calls
    on one layer object (a second thread waits), so that the running statistics, the mask
    stream and what backward reads stay those of whole calls. Copies and pickles take the
    state's public values (``_committed``) into a new state with a lock of its own."""

    #: the ``_core`` class that carries the hyper-parameters, for Rust-backed classes
    _hyper_class: ClassVar[Any] = None
    _hyper_names: ClassVar[tuple[str, ...]] = ()
    #: the class of ``self._state``: the Python state here, the ``_core`` one for Rust-backed classes
    _new_state: ClassVar[Any] = None
    _packed: Any = None
    _not_copied: ClassVar[tuple[str, ...]] = ("_state", "_packed")
    _state: Any

    def _pack(self):
        packed = self._packed = self._hyper_class(**{h: getattr(self, h) for h in self._hyper_names})
        return packed

    def _committed(self) -> dict[str, Any]:
        """What a copy keeps of the state, as keyword arguments of ``_new_state``."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in self._not_copied}
        d["_committed"] = self._committed()
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        d = dict(d)
        committed = d.pop("_committed")
        self.__dict__.update(d)
        self._state = self._new_state(**committed)


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

    _hyper_names = ("num_features", "eps", "momentum", "dtype")
    _new_state: ClassVar[Any] = BatchNormState
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
        self._state = self._new_state()

    def _committed(self) -> dict[str, Any]:
        # a copy (copy, deepcopy, pickle) keeps the parameters, statistics and gradients; it
        # runs a forward before its first backward
        return {"grad_gamma": self.grad_gamma, "grad_beta": self.grad_beta}

    @property
    def grad_gamma(self) -> np.ndarray | None:
        """``sum(grad_output * xhat)`` of the last backward (None before it)."""
        return self._state.grad_gamma

    @grad_gamma.setter
    def grad_gamma(self, value: np.ndarray | None) -> None:
        self._state.grad_gamma = value

    @property
    def grad_beta(self) -> np.ndarray | None:
        """``sum(grad_output)`` of the last backward (None before it)."""
        return self._state.grad_beta

    @grad_beta.setter
    def grad_beta(self, value: np.ndarray | None) -> None:
        self._state.grad_beta = value

    @property
    def num_features(self) -> int:
        """The number of channels ``C`` (read-only)."""
        return self._num_features

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters, the statistics and the inputs (read-only)."""
        return self._dtype

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        """Normalize ``x`` (``(N, C)`` or ``(N, C, L)``, the layer's dtype) per channel: with
        the batch statistics, updating the running ones, when ``training``; with the running
        statistics otherwise. Returns a new array."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """The gradient with respect to the last forward's ``x``, from ``grad_output`` (its
        output's shape and dtype); sets ``grad_gamma`` and ``grad_beta``. Needs a forward first."""
        raise NotImplementedError


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
    _new_state: ClassVar[Any] = DropoutState
    drop_rate = Hyper(lo=0.0, hi=1.0, hi_open=True)

    def __init__(self, drop_rate=0.5, *, seed=None) -> None:
        self.drop_rate = drop_rate
        self._state = self._new_state(_validate.resolve_seed(seed, "Dropout"))

    def _committed(self) -> dict[str, Any]:
        s = self._state
        return {"seed": s.seed, "num_training_calls": s.num_training_calls, "kept": s.kept, "last": s.last}

    @property
    def seed(self) -> int:
        """The seed of every mask."""
        return self._state.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._state.seed = _validate.u64("Dropout", "seed", value)

    @property
    def num_training_calls(self) -> int:
        """The number of training-mode forward calls so far: the stream of the next mask."""
        return self._state.num_training_calls

    @num_training_calls.setter
    def num_training_calls(self, value: int) -> None:
        self._state.num_training_calls = _validate.integer(
            "Dropout", "num_training_calls", value, lo=0, hi=_validate.U64_MAX
        )

    @property
    def kept(self) -> np.ndarray | None:
        """Which elements the last training forward kept (None before it and after an eval forward)."""
        return self._state.kept

    @property
    def mask(self) -> np.ndarray | None:
        """The float mask of the last training forward: the scale where kept, else 0."""
        last = self._state.last
        if self.kept is None or last is None:
            return None
        _, dtype, p = last
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
