"""The arguments of ``bptt``, checked once for both implementations (``gradfast.rnn`` in
Rust, ``gradfast.reference.rnn`` in NumPy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import _validate

KEYS = ("Wx", "Wh", "Wy")


def _steps(fn: str, name: str, value: object, dtype: np.dtype) -> np.ndarray:
    """Stack ``value`` into ``(T, D, B)`` or ``(T, D)`` (vector steps), checking type and dtype."""
    if isinstance(value, np.ndarray):
        _validate.float_array(fn, name, value)
        _validate.same_dtype(fn, name, value, dtype)
        if value.ndim not in (2, 3):
            raise ValueError(
                f"{fn}: {name} must be a (T, D, B) or (T, D) array or a sequence of (D, B) or (D,) arrays, "
                f"got an array of shape {value.shape}"
            )
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"{fn}: {name} must be a numpy.ndarray or a sequence of numpy arrays, got {type(value).__name__}"
        )
    for t, a in enumerate(value):
        _validate.float_array(fn, f"{name}[{t}]", a)
        _validate.same_dtype(fn, f"{name}[{t}]", a, dtype)
        if a.ndim not in (1, 2):
            raise ValueError(f"{fn}: {name}[{t}] must be a (D, B) or (D,) array, got shape {a.shape}")
        if a.shape != value[0].shape:
            raise ValueError(f"{fn}: {name}[{t}] must have shape {value[0].shape} like {name}[0], got {a.shape}")
    if len(value) == 0:
        return np.empty((0, 0), dtype=dtype)
    return np.stack(value)


def bptt_args(inputs, targets, hidden_state, weights, sequence_length):
    """Check ``bptt``'s arguments; returns ``(X, Y, h0, Wx, Wh, Wy, S)`` with ``X`` ``(T, I, B)``,
    ``Y`` ``(T, O, B)``, ``h0`` ``(H, B)`` (vector forms reshaped) and ``S = sequence_length``."""
    fn = "bptt"
    if not isinstance(weights, Mapping):
        raise TypeError(f"{fn}: weights must be a dict with keys 'Wx', 'Wh', 'Wy', got {type(weights).__name__}")
    for k in KEYS:
        if k not in weights:
            raise ValueError(f"{fn}: weights must have key {k!r}, got it missing")
    for k in weights:
        if k not in KEYS:
            raise ValueError(f"{fn}: weights must have only the keys 'Wx', 'Wh', 'Wy', got extra key {k!r}")
    Wx, Wh, Wy = (_validate.float_array(fn, f"weights[{k!r}]", weights[k]) for k in KEYS)
    dtype = Wx.dtype
    for k, w in zip(KEYS, (Wx, Wh, Wy)):
        _validate.same_dtype(fn, f"weights[{k!r}]", w, dtype)
        if w.ndim != 2:
            raise ValueError(f"{fn}: weights[{k!r}] must be a 2-D array, got shape {w.shape}")
    H, I = Wx.shape  # noqa: E741 (the docstring's names)
    _validate.same_shape(fn, "weights['Wh']", Wh, (H, H))
    if Wy.shape[1] != H:
        raise ValueError(f"{fn}: weights['Wy'] must have shape (O, {H}), got {Wy.shape}")
    O = Wy.shape[0]  # noqa: E741
    if O == 0:
        raise ValueError(f"{fn}: weights['Wy'] must have at least one row (O >= 1), got shape {Wy.shape}")

    S = _validate.integer(fn, "sequence_length", sequence_length, lo=1)

    X = _steps(fn, "inputs", inputs, dtype)
    T = X.shape[0]
    if T == 0:
        raise ValueError(f"{fn}: inputs must have at least one step, got 0")
    if X.shape[1] != I:
        raise ValueError(
            f"{fn}: inputs must have steps of shape ({I}, B) or ({I},) (I = weights['Wx'].shape[1]), "
            f"got steps of shape {X.shape[1:]}"
        )
    if S > T:
        raise ValueError(f"{fn}: sequence_length must be an int in [1, {T}] (the number of steps), got {S}")
    B = X.shape[2] if X.ndim == 3 else 1
    if B == 0:
        raise ValueError(f"{fn}: inputs must have a batch size B >= 1, got steps of shape {X.shape[1:]}")
    X = X.reshape(T, I, B)

    Y = _steps(fn, "targets", targets, dtype)
    vec = f" or ({O},)" if B == 1 else ""
    if Y.shape[0] != T:
        raise ValueError(f"{fn}: targets must have {T} steps like inputs, got {Y.shape[0]}")
    if Y.shape[1:] == (O,) and B == 1:
        Y = Y.reshape(T, O, 1)
    elif Y.shape[1:] != (O, B):
        raise ValueError(f"{fn}: targets must have steps of shape ({O}, {B}){vec}, got {Y.shape[1:]}")

    h0 = _validate.float_array(fn, "hidden_state", hidden_state)
    _validate.same_dtype(fn, "hidden_state", h0, dtype)
    vec = f" or ({H},)" if B == 1 else ""
    if h0.shape == (H,) and B == 1:
        h0 = h0.reshape(H, 1)
    elif h0.shape != (H, B):
        raise ValueError(f"{fn}: hidden_state must have shape ({H}, {B}){vec}, got {h0.shape}")

    return X, Y, h0, Wx, Wh, Wy, S
