"""Reference linear least squares by full-batch gradient descent and by mini-batch SGD with momentum.

Model ``X @ w`` with loss ``||X w - y||^2 / (2 n)``, whose gradient is ``X^T (X w - y) / n``.
``weights`` is ``(d,)`` with ``y`` ``(n,)``, or ``(d, k)`` with ``y`` ``(n, k)``; ``X`` is
``(n, d)``. ``weights`` is updated in place (float32/float64, C-contiguous, writeable).
``X`` and ``y`` are read only: integer or bool data, and sequences that are not arrays, are
converted to the dtype of ``weights`` (the original design's own example passes integer data); a
floating ndarray must already have that dtype (no silent precision change).
"""

from __future__ import annotations

import numpy as np

from .._base.linear import gradient_descent_args, sgd_optimizer_args
from . import _random


def _gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X^T (X w - y) / n`` in the original design's order of operations (a new array)."""
    grad = X.T @ (X @ w - y)
    grad /= w.dtype.type(X.shape[0])
    return grad


def gradient_descent(X, y, weights, learning_rate=0.01, epochs=100):
    """Full-batch gradient descent on linear least squares, in place; returns ``weights``.

    Each of the ``epochs`` steps: ``weights -= learning_rate * X^T (X weights - y) / n``.
    """
    X, y, learning_rate, epochs = gradient_descent_args(X, y, weights, learning_rate, epochs)
    lr_t = weights.dtype.type(learning_rate)
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
    ``velocity = momentum * velocity - learning_rate * g``; ``weights += velocity`` (the original design's rule).
    """
    X, y, learning_rate, batch_size, momentum, epochs, seed = sgd_optimizer_args(
        X, y, weights, learning_rate, batch_size, momentum, epochs, seed
    )
    t = weights.dtype.type
    n = X.shape[0]
    velocity = np.zeros_like(weights)
    with np.errstate(all="ignore"):
        # the epochs run on a copy, committed whole: an interrupt leaves whole epochs in weights
        w = weights.copy()
        for epoch in range(epochs):
            order = np.argsort(_random.bits(seed, epoch, n), kind="stable")
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                grad = _gradient(X[idx], y[idx], w)
                grad *= t(learning_rate)
                velocity *= t(momentum)
                velocity -= grad
                w += velocity
            np.copyto(weights, w)
    return weights
