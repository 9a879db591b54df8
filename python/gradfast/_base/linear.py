"""The arguments of ``gradient_descent`` and ``sgd_optimizer``, checked once for both
implementations (``gradfast.linear`` in Rust, ``gradfast.reference.linear`` in NumPy)."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _validate

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


def _problem(fn: str, X, y, weights, learning_rate) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate a least-squares call; returns ``(X, y, learning_rate)`` with ``X``, ``y`` of
    ``weights.dtype``."""
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
    learning_rate = _validate.number(fn, "learning_rate", learning_rate, lo=0.0)
    return X, y, learning_rate


def gradient_descent_args(X, y, weights, learning_rate, epochs) -> tuple[np.ndarray, np.ndarray, float, int]:
    """``gradient_descent``'s arguments checked: ``(X, y, learning_rate, epochs)``."""
    fn = "gradient_descent"
    X, y, learning_rate = _problem(fn, X, y, weights, learning_rate)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    return X, y, learning_rate, epochs


def sgd_optimizer_args(
    X, y, weights, learning_rate, batch_size, momentum, epochs, seed
) -> tuple[np.ndarray, np.ndarray, float, int, float, int, int]:
    """``sgd_optimizer``'s arguments checked, ``seed=None`` drawn:
    ``(X, y, learning_rate, batch_size, momentum, epochs, seed)``."""
    fn = "sgd_optimizer"
    X, y, learning_rate = _problem(fn, X, y, weights, learning_rate)
    batch_size = _validate.integer(fn, "batch_size", batch_size, lo=1, unbounded=True)
    momentum = _validate.number(fn, "momentum", momentum, lo=0.0, hi=1.0, hi_open=True)
    epochs = _validate.integer(fn, "epochs", epochs, lo=0)
    seed = _validate.resolve_seed(seed, fn)
    return X, y, learning_rate, batch_size, momentum, epochs, seed
