"""Reference backpropagation through time for a vanilla (tanh) RNN, column convention."""

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


def arguments(fn, inputs, targets, hidden_state, weights, sequence_length):
    """Check ``bptt``'s arguments; returns ``(X, Y, h0, Wx, Wh, Wy, S)`` with ``X`` ``(T, I, B)``,
    ``Y`` ``(T, O, B)``, ``h0`` ``(H, B)`` (vector forms reshaped), every error named as ``fn``."""
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


def bptt(inputs, targets, hidden_state, weights, sequence_length):
    """Loss and exact gradients of a vanilla RNN over the first ``sequence_length`` steps.

    With ``weights = {'Wx': (H, I), 'Wh': (H, H), 'Wy': (O, H)}`` and ``h_0 = hidden_state``::

        h_t  = tanh(Wx x_t + Wh h_{t-1})        y_t = Wy h_t        t = 1..S (S = sequence_length)
        loss = sum_t sum((y_t - target_t)^2) / (S * O * B)

    Returns ``(grads, loss)``: ``grads`` has keys ``'Wx'``, ``'Wh'``, ``'Wy'`` with the
    weights' shapes and dtype; ``loss`` is a Python float (accumulated in float64).
    Backward: ``dy_t = 2 (y_t - target_t) / (S O B)``, ``dWy = sum dy_t h_t^T``,
    ``dh_t = Wy^T dy_t + Wh^T da_{t+1}``, ``da_t = (1 - h_t^2) * dh_t``,
    ``dWx = sum da_t x_t^T``, ``dWh = sum da_t h_{t-1}^T``; all in the weights' dtype.

    Layouts: ``inputs`` is a ``(T, I, B)`` array or a sequence of ``T`` arrays ``(I, B)``;
    ``targets`` likewise with ``O`` and the same ``T``; ``hidden_state`` is ``(H, B)``.
    Vector form (``B = 1``): ``inputs`` may be a ``(T, I)`` array or a sequence of ``(I,)``
    arrays; whenever ``B = 1`` the target steps may be ``(O,)`` or ``(O, 1)`` and
    ``hidden_state`` ``(H,)`` or ``(H, 1)``. Every array must have the dtype of
    ``weights['Wx']``; ``weights`` must have exactly the keys ``Wx``, ``Wh``, ``Wy``;
    ``1 <= sequence_length <= T``; steps after ``sequence_length`` are ignored.

    Deviations from the original design: the original code's backward read ``dh`` before
    assigning it and never fed the output error into it, started from zeros instead of
    ``hidden_state``, returned ``dWy`` as zeros, and mishandled ``(I,)`` steps (``x.T`` of a
    vector); all fixed here.
    """
    X, Y, h0, Wx, Wh, Wy, S = arguments("bptt", inputs, targets, hidden_state, weights, sequence_length)
    H, B, O = Wx.shape[0], X.shape[2], Wy.shape[0]  # noqa: E741 (the docstring's names)
    dtype = Wx.dtype
    t_ = dtype.type
    with np.errstate(all="ignore"):
        hs = np.empty((S + 1, H, B), dtype=dtype)
        hs[0] = h0
        for t in range(S):
            hs[t + 1] = np.tanh(Wx @ X[t] + Wh @ hs[t])
        diff = Wy @ hs[1:] - Y[:S]  # (S, O, B)
        loss = float(np.mean(np.square(diff.astype(np.float64))))
        dy = diff * t_(2.0 / (S * O * B))
        dWy = np.tensordot(dy, hs[1:], axes=([0, 2], [0, 2]))
        dh_out = Wy.T @ dy  # (S, H, B): the output's share of dL/dh_t
        da = np.empty((S, H, B), dtype=dtype)
        carry = np.zeros((H, B), dtype=dtype)  # Wh^T da_{t+1}: the future's share of dL/dh_t
        for t in reversed(range(S)):
            da[t] = (1 - hs[t + 1] * hs[t + 1]) * (dh_out[t] + carry)
            carry = Wh.T @ da[t]
        dWx = np.tensordot(da, X[:S], axes=([0, 2], [0, 2]))
        dWh = np.tensordot(da, hs[:S], axes=([0, 2], [0, 2]))
    grads = {k: np.ascontiguousarray(g) for k, g in zip(KEYS, (dWx, dWh, dWy))}
    return grads, loss
