"""Reference backpropagation through time for a vanilla (tanh) RNN, column convention."""

from __future__ import annotations

import numpy as np

from .._base.rnn import KEYS, bptt_args


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
    X, Y, h0, Wx, Wh, Wy, S = bptt_args(inputs, targets, hidden_state, weights, sequence_length)
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
