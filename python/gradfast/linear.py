"""Rust-backed linear least squares: gradient descent and mini-batch SGD, the whole loop in Rust."""

from __future__ import annotations

from . import _core
from ._base.linear import gradient_descent_args, sgd_optimizer_args


def gradient_descent(X, y, weights, learning_rate=0.01, epochs=100):
    """Full-batch gradient descent on linear least squares, in place; returns ``weights``.

    Minimizes ``||X weights - y||^2 / (2 n)`` for ``X`` ``(n, d)`` and ``weights`` ``(d,)``
    with ``y`` ``(n,)`` (or ``(d, k)`` with ``(n, k)``): each of the ``epochs`` steps is
    ``weights -= learning_rate * X^T (X weights - y) / n``. ``weights`` must be a writeable
    C-contiguous float32 or float64 array; ``X`` and ``y`` are read only, integer data and
    sequences converted to its dtype (a floating array must already have it).
    """
    X, y, learning_rate, epochs = gradient_descent_args(X, y, weights, learning_rate, epochs)
    hyper = _core.GradientDescentHyper(learning_rate=learning_rate, epochs=epochs)
    _core.gradient_descent("gradient_descent", X, y, weights, hyper)
    return weights


def sgd_optimizer(X, y, weights, learning_rate=0.01, batch_size=32, momentum=0.9, *, epochs=1, seed=None):
    """Mini-batch SGD with momentum on linear least squares, in place; returns ``weights``.

    The problem and arrays are those of ``gradient_descent``. Each epoch visits the rows in
    a fresh random order drawn from ``seed`` (``None``: a fresh seed per call; equal seeds give
    equal runs), in batches of ``batch_size``; per batch ``B``,
    ``velocity = momentum * velocity - learning_rate * X_B^T (X_B weights - y_B) / |B|`` and
    ``weights += velocity``, the velocity starting at zero on every call.
    """
    X, y, learning_rate, batch_size, momentum, epochs, seed = sgd_optimizer_args(
        X, y, weights, learning_rate, batch_size, momentum, epochs, seed
    )
    hyper = _core.SgdHyper(
        learning_rate=learning_rate,
        # A batch larger than X is all of X.
        batch_size=min(batch_size, X.shape[0]),
        momentum=momentum,
        epochs=epochs,
        seed=seed,
    )
    _core.sgd_optimizer("sgd_optimizer", X, y, weights, hyper)
    return weights
