"""Reference neural-network layers in plain NumPy: batch normalization over ``(N, C)`` or
``(N, C, L)``, as ``torch.nn.BatchNorm1d``, and inverted dropout with a counter-based,
reproducible mask. The classes are declared in ``gradfast._base.nn``; this module holds
their arithmetic.
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from .._base.nn import BatchNormBase, DropoutBase
from . import _random


def _layout(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes the statistics run over and the shape that broadcasts a channel vector."""
    return ((0,), (1, x.shape[1])) if x.ndim == 2 else ((0, 2), (1, x.shape[1], 1))


class BatchNorm(BatchNormBase):
    __doc__ = BatchNormBase.__doc__

    def _check_attrs(self, fn: str, training: bool, x: np.ndarray) -> None:
        arrays = [("x", x, False)]
        for name in ("gamma", "beta", "running_mean", "running_var"):
            # running statistics are written in place only in training
            writeable = training and name.startswith("running")
            a = _validate.float_array(fn, f"self.{name}", getattr(self, name), writeable=writeable)
            _validate.same_dtype(fn, f"self.{name}", a, self.dtype)
            _validate.same_shape(fn, f"self.{name}", a, (self.num_features,))
            arrays.append((f"self.{name}", a, writeable))
        _validate.no_overlaps(fn, [(n, a) for n, a, w in arrays if w], [(n, a) for n, a, w in arrays if not w])

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        with self._state:
            return self._forward(x, training)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        with self._state:
            return self._backward(grad_output)

    def _forward(self, x: np.ndarray, training) -> np.ndarray:
        fn = "BatchNorm.forward"
        c = self.num_features
        _validate.float_array(fn, "x", x)
        if x.dtype != self.dtype:
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the layer, got {x.dtype}")
        if x.ndim not in (2, 3) or x.shape[1] != c:
            raise ValueError(f"{fn}: x must have shape (N, {c}) or (N, {c}, L), got {x.shape}")
        training = _validate.flag(fn, "training", training)
        self._check_attrs(fn, training, x)
        axes, bshape = _layout(x)
        n = x.size // c
        if training and n < 2:
            raise ValueError(f"{fn}: x must have more than 1 value per channel when training, got shape {x.shape}")

        f8 = np.float64
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
                mean = self.running_mean.astype(f8)
                xc = x64 - mean.reshape(bshape)
                var = self.running_var.astype(f8)
            inv_std = 1.0 / np.sqrt(var + self.eps)
            gamma = self.gamma.astype(f8)
            xhat = xc * inv_std.reshape(bshape)
            out = (gamma.reshape(bshape) * xhat + self.beta.astype(f8).reshape(bshape)).astype(self.dtype)
        if training:
            self.running_mean[...] = new_mean
            self.running_var[...] = new_var
        self._state.cache = (training, x, mean, inv_std, gamma)
        return out

    def _backward(self, grad_output: np.ndarray) -> np.ndarray:
        fn = "BatchNorm.backward"
        if self._state.cache is None:
            raise ValueError(f"{fn}: forward must be called before backward, got no forward call yet")
        training, x, mean, inv_std, gamma = self._state.cache
        _validate.float_array(fn, "grad_output", grad_output)
        if grad_output.dtype != self.dtype:
            raise TypeError(f"{fn}: grad_output must have dtype {self.dtype} like the layer, got {grad_output.dtype}")
        if grad_output.shape != x.shape:
            raise ValueError(
                f"{fn}: grad_output must have shape {x.shape} like the last forward's x, got {grad_output.shape}"
            )
        axes, bshape = _layout(x)
        n = x.size // self.num_features
        g = grad_output.astype(np.float64, copy=False)
        with np.errstate(all="ignore"):
            xhat = (x.astype(np.float64) - mean.reshape(bshape)) * inv_std.reshape(bshape)
            scale = gamma * inv_std
            grad_beta = g.sum(axis=axes)
            grad_gamma = np.sum(g * xhat, axis=axes)
            if training:
                grad_x = (scale / n).reshape(bshape) * (
                    n * g - grad_beta.reshape(bshape) - xhat * grad_gamma.reshape(bshape)
                )
            else:
                grad_x = g * scale.reshape(bshape)
        self.grad_gamma = grad_gamma.astype(self.dtype)
        self.grad_beta = grad_beta.astype(self.dtype)
        return grad_x.astype(self.dtype)


class Dropout(DropoutBase):
    __doc__ = DropoutBase.__doc__

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        with self._state:
            return self._forward(x, training)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        with self._state:
            return self._backward(grad_output)

    def _forward(self, x: np.ndarray, training) -> np.ndarray:
        fn = "Dropout.forward"
        _validate.float_array(fn, "x", x)
        training = _validate.flag(fn, "training", training)
        p = self.drop_rate
        state = self._state
        if not training:
            state.kept, state.last = None, (x.shape, x.dtype, p)
            return np.array(x, copy=True)
        t = x.dtype.type
        kept = _random.uniform(state.seed, state.num_training_calls, x.size).reshape(x.shape) >= p
        with np.errstate(all="ignore"):
            out = x * np.where(kept, t(1.0 / (1.0 - p)), t(0.0))
        state.num_training_calls += 1
        state.kept, state.last = kept, (x.shape, x.dtype, p)
        return out

    def _backward(self, grad_output: np.ndarray) -> np.ndarray:
        fn = "Dropout.backward"
        if self._state.last is None:
            raise ValueError(f"{fn}: forward must be called before backward, got no forward call yet")
        shape, dtype, _ = self._state.last
        _validate.float_array(fn, "grad_output", grad_output)
        if grad_output.dtype != dtype:
            raise TypeError(
                f"{fn}: grad_output must have dtype {dtype} like the last forward's x, got {grad_output.dtype}"
            )
        if grad_output.shape != shape:
            raise ValueError(
                f"{fn}: grad_output must have shape {shape} like the last forward's x, got {grad_output.shape}"
            )
        mask = self.mask
        if mask is None:
            return np.array(grad_output, copy=True)
        with np.errstate(all="ignore"):
            return grad_output * mask
