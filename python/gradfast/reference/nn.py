"""Reference neural-network layers: batch normalization over ``(N, C)`` or ``(N, C, L)``, as
``torch.nn.BatchNorm1d``, and inverted dropout with a counter-based, reproducible mask.
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from .._base.optimizer import Hyper
from . import _random


class BatchNorm:
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
    ones the last forward used.

    Precision: ``x`` must have the layer's dtype; all arithmetic (two-pass statistics,
    normalization, running-statistic updates, backward) is done in float64 and each result
    is rounded once to the layer's dtype.

    Seed deviations: the seed updated ``running_var`` with the biased batch variance (we
    use the unbiased one, as PyTorch), took statistics over axis 0 only (wrong for
    ``(N, C, L)``), rebound the running arrays instead of updating them in place, had no
    ``n < 2`` check, and had no backward.
    """

    eps = Hyper(lo=0.0)
    momentum = Hyper(lo=0.0, hi=1.0)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float64) -> None:
        fn = "BatchNorm"
        self.num_features = _validate.integer(fn, "num_features", num_features, lo=1)
        self.eps = eps
        self.momentum = momentum
        self.dtype = dt = _validate.float_dtype_arg(fn, dtype)
        c = self.num_features
        self.gamma = np.ones(c, dtype=dt)
        self.beta = np.zeros(c, dtype=dt)
        self.running_mean = np.zeros(c, dtype=dt)
        self.running_var = np.ones(c, dtype=dt)
        self.grad_gamma: np.ndarray | None = None
        self.grad_beta: np.ndarray | None = None
        self._cache: dict | None = None

    def _check_attrs(self, fn: str, training: bool) -> None:
        for name in ("gamma", "beta", "running_mean", "running_var"):
            # running statistics are written in place only in training
            writeable = training and name.startswith("running")
            a = _validate.float_array(fn, f"self.{name}", getattr(self, name), writeable=writeable)
            _validate.same_dtype(fn, f"self.{name}", a, self.dtype)
            _validate.same_shape(fn, f"self.{name}", a, (self.num_features,))

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        fn = "BatchNorm.forward"
        c = self.num_features
        _validate.float_array(fn, "x", x)
        if x.dtype != self.dtype:
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the layer, got {x.dtype}")
        if x.ndim not in (2, 3) or x.shape[1] != c:
            raise ValueError(f"{fn}: x must have shape (N, {c}) or (N, {c}, L), got {x.shape}")
        training = _validate.flag(fn, "training", training)
        self._check_attrs(fn, training)
        axes = (0,) if x.ndim == 2 else (0, 2)
        bshape = (1, c) if x.ndim == 2 else (1, c, 1)
        n = x.size // c
        if training and n < 2:
            raise ValueError(f"{fn}: x must have more than 1 value per channel when training, got shape {x.shape}")

        f8 = np.float64
        gamma = self.gamma.astype(f8)
        x64 = x.astype(f8, copy=False)
        with np.errstate(all="ignore"):
            if training:
                mean = x64.mean(axis=axes)
                xc = x64 - mean.reshape(bshape)
                sumsq = np.sum(xc * xc, axis=axes)
                var = sumsq / n
                m = self.momentum
                new_mean = m * mean + (1.0 - m) * self.running_mean.astype(f8)
                new_var = m * (sumsq / (n - 1)) + (1.0 - m) * self.running_var.astype(f8)
            else:
                xc = x64 - self.running_mean.astype(f8).reshape(bshape)
                var = self.running_var.astype(f8)
            inv_std = 1.0 / np.sqrt(var + self.eps)
            xhat = xc * inv_std.reshape(bshape)
            out = (gamma.reshape(bshape) * xhat + self.beta.astype(f8).reshape(bshape)).astype(self.dtype)
        if training:
            self.running_mean[...] = new_mean
            self.running_var[...] = new_var
        self._cache = {
            "training": training,
            "xhat": xhat,
            "inv_std": inv_std,
            "gamma": gamma,
            "shape": x.shape,
            "axes": axes,
            "bshape": bshape,
            "n": n,
        }
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        fn = "BatchNorm.backward"
        cache = self._cache
        if cache is None:
            raise ValueError(f"{fn}: forward must be called before backward, got no forward call yet")
        _validate.float_array(fn, "grad_output", grad_output)
        if grad_output.dtype != self.dtype:
            raise TypeError(f"{fn}: grad_output must have dtype {self.dtype} like the layer, got {grad_output.dtype}")
        if grad_output.shape != cache["shape"]:
            raise ValueError(
                f"{fn}: grad_output must have shape {cache['shape']} like the last forward's x, got {grad_output.shape}"
            )
        axes, bshape, n = cache["axes"], cache["bshape"], cache["n"]
        xhat, scale = cache["xhat"], cache["gamma"] * cache["inv_std"]
        g = grad_output.astype(np.float64, copy=False)
        with np.errstate(all="ignore"):
            grad_beta = g.sum(axis=axes)
            grad_gamma = np.sum(g * xhat, axis=axes)
            if cache["training"]:
                grad_x = (scale / n).reshape(bshape) * (
                    n * g - grad_beta.reshape(bshape) - xhat * grad_gamma.reshape(bshape)
                )
            else:
                grad_x = g * scale.reshape(bshape)
        self.grad_gamma = grad_gamma.astype(self.dtype)
        self.grad_beta = grad_beta.astype(self.dtype)
        return grad_x.astype(self.dtype)


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
        _validate.float_array(fn, "x", x)
        training = _validate.flag(fn, "training", training)
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
        _validate.float_array(fn, "grad_output", grad_output)
        if grad_output.dtype != dtype:
            raise TypeError(
                f"{fn}: grad_output must have dtype {dtype} like the last forward's x, got {grad_output.dtype}"
            )
        if grad_output.shape != shape:
            raise ValueError(
                f"{fn}: grad_output must have shape {shape} like the last forward's x, got {grad_output.shape}"
            )
        if self.mask is None:
            return grad_output.copy()
        with np.errstate(all="ignore"):
            return grad_output * self.mask
