"""Reference linear least squares by full-batch gradient descent and by mini-batch SGD with momentum.

Model ``X @ w`` with loss ``||X w - y||^2 / (2 n)``, whose gradient is ``X^T (X w - y) / n``.
``weights`` is ``(d,)`` with ``y`` ``(n,)``, or ``(d, k)`` with ``y`` ``(n, k)``; ``X`` is
``(n, d)``. ``weights`` is updated in place (float32/float64, C-contiguous, writeable).
``X`` and ``y`` are read only: integer or bool data, and sequences that are not arrays, are
converted to the dtype of ``weights`` (the seed's own example passes integer data); a
floating ndarray must already have that dtype (no silent precision change).
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _validate
from . import _random

#: NumPy < 1.24 warns about ragged nested sequences (VisibleDeprecationWarning, a UserWarning) and
#: makes an object array, where later versions raise ValueError: the same error for both
_RAGGED_WARNS = np.lib.NumpyVersion(np.__version__) < "1.24.0"


def _asarray(a: object) -> np.ndarray:
    if not _RAGGED_WARNS:
        return np.asarray(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            return np.asarray(a)
        except UserWarning as e:
            raise ValueError(str(e)) from e


def _data(fn: str, name: str, a: object, dtype: np.dtype) -> np.ndarray:
    """``a`` as an array of ``dtype``: ints/bools and non-arrays converted, float arrays must match."""
    if isinstance(a, np.ndarray):
        arr = _validate.ndarray(fn, name, a)
    else:
        try:
            arr = _asarray(a)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{fn}: {name} must be an array of real numbers, got {type(a).__name__}") from e
    if arr.dtype.kind in "biu" or (arr.dtype.kind == "f" and not isinstance(a, np.ndarray)):
        return arr.astype(dtype)
    if arr.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be an array of real numbers, got dtype {arr.dtype}")
    _validate.same_dtype(fn, name, arr, dtype)
    return arr


def problem(fn: str, X, y, weights, learning_rate):
    """Validate a least-squares call; returns ``(X, y, lr)`` with ``X``, ``y`` of ``weights.dtype``."""
    _validate.float_array(fn, "weights", weights, writeable=True)
    if weights.ndim not in (1, 2):
        raise ValueError(f"{fn}: weights must be 1-D (d,) or 2-D (d, k), got shape {weights.shape}")
    X = _data(fn, "X", X, weights.dtype)
    y = _data(fn, "y", y, weights.dtype)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{fn}: X must be 2-D (n, d) with n >= 1, got shape {X.shape}")
    n, d = X.shape
    if weights.shape[0] != d:
        raise ValueError(f"{fn}: weights must have {d} rows like X's {d} columns, got shape {weights.shape}")
    _validate.same_shape(fn, "y", y, (n,) + weights.shape[1:])
    _validate.no_alias(fn, "weights", weights, "X", X)
    _validate.no_alias(fn, "weights", weights, "y", y)
    lr = _validate.number(fn, "learning_rate", learning_rate, lo=0.0)
    return X, y, lr


def _gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X^T (X w - y) / n`` in the seed's order of operations (a new array)."""
    grad = X.T @ (X @ w - y)
    grad /= w.dtype.type(X.shape[0])
    return grad


def gradient_descent(X, y, weights, learning_rate=0.01, epochs=100):
    """Full-batch gradient descent on linear least squares, in place; returns ``weights``.

    Each of the ``epochs`` steps: ``weights -= learning_rate * X^T (X weights - y) / n``.
    """
    fn = "gradient_descent"
    X, y, lr = problem(fn, X, y, weights, learning_rate)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    lr_t = weights.dtype.type(lr)
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            grad = _gradient(X, y, weights)
            grad *= lr_t
            weights -= grad
    return weights


def sgd_optimizer(X, y, weights, learning_rate=0.01, batch_size=32, momentum=0.9, *, epochs=1, seed=None):
    """Mini-batch SGD with momentum on linear least squares, in place; returns ``weights``.

    The velocity starts at zero on every call and persists across the call's epochs. Epoch
    ``e`` (``0, 1, ...`` within the call) visits the rows in the order
    ``np.argsort(_random.bits(seed, e, n), kind="stable")`` (a uniform permutation from the
    counter-based stream: sort the indices by their 64-bit keys, ties by index), in
    consecutive batches of ``batch_size`` (the last one may be smaller). ``seed=None`` draws
    one fresh seed per call. Per batch ``B``: ``g = X_B^T (X_B w - y_B) / |B|``;
    ``velocity = momentum * velocity - lr * g``; ``weights += velocity`` (the seed's rule).
    """
    fn = "sgd_optimizer"
    X, y, lr = problem(fn, X, y, weights, learning_rate)
    batch_size = _validate.integer(fn, "batch_size", batch_size, lo=1)
    mu = _validate.number(fn, "momentum", momentum, lo=0.0, hi=1.0, hi_open=True)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    seed = _random.resolve_seed(seed, fn)
    t = weights.dtype.type
    n = X.shape[0]
    velocity = np.zeros_like(weights)
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            order = np.argsort(_random.bits(seed, epoch, n), kind="stable")
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                grad = _gradient(X[idx], y[idx], weights)
                grad *= t(lr)
                velocity *= t(mu)
                velocity -= grad
                weights += velocity
    return weights
