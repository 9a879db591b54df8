"""Rust-backed linear least squares: gradient descent and mini-batch SGD, the whole loop in Rust."""

from __future__ import annotations

from . import _core, _validate
from .reference import _random
from .reference import linear as _ref


def gradient_descent(X, y, weights, learning_rate=0.01, epochs=100):
    fn = "gradient_descent"
    X, y, lr = _ref.problem(fn, X, y, weights, learning_rate)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    _core.gradient_descent(fn, X, y, weights, _core.GradientDescentHyper(learning_rate=lr, epochs=epochs))
    return weights


def sgd_optimizer(X, y, weights, learning_rate=0.01, batch_size=32, momentum=0.9, *, epochs=1, seed=None):
    fn = "sgd_optimizer"
    X, y, lr = _ref.problem(fn, X, y, weights, learning_rate)
    # A batch larger than X is all of X.
    batch_size = min(_validate.integer(fn, "batch_size", batch_size, lo=1, unbounded=True), X.shape[0])
    mu = _validate.number(fn, "momentum", momentum, lo=0.0, hi=1.0, hi_open=True)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    seed = _random.resolve_seed(seed, fn)
    hyper = _core.SgdHyper(learning_rate=lr, batch_size=batch_size, momentum=mu, epochs=epochs, seed=seed)
    _core.sgd_optimizer(fn, X, y, weights, hyper)
    return weights


gradient_descent.__doc__ = _ref.gradient_descent.__doc__
sgd_optimizer.__doc__ = _ref.sgd_optimizer.__doc__
