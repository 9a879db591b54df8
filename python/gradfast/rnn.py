"""Rust-backed backpropagation through time for a vanilla (tanh) RNN."""

from __future__ import annotations

import numpy as np

from . import _core
from ._base.rnn import KEYS, bptt_args


def bptt(inputs, targets, hidden_state, weights, sequence_length):
    """Loss and exact gradients of a vanilla RNN over the first ``sequence_length`` steps.

    With ``weights = {'Wx': (H, I), 'Wh': (H, H), 'Wy': (O, H)}`` and ``h_0 = hidden_state``::

        h_t  = tanh(Wx x_t + Wh h_{t-1})        y_t = Wy h_t        t = 1..S (S = sequence_length)
        loss = sum_t sum((y_t - target_t)^2) / (S * O * B)

    Returns ``(grads, loss)``: ``grads`` has keys ``'Wx'``, ``'Wh'``, ``'Wy'`` with the
    weights' shapes and dtype; ``loss`` is a Python float (accumulated in float64).

    ``inputs`` is a ``(T, I, B)`` array or a sequence of ``T`` arrays ``(I, B)``; ``targets``
    likewise with ``O`` and the same ``T``; ``hidden_state`` is ``(H, B)``. With ``B = 1``
    the steps may be vectors: ``inputs`` ``(T, I)`` or ``(I,)`` steps, target steps ``(O,)``,
    ``hidden_state`` ``(H,)``. Every array has the dtype of ``weights['Wx']``;
    ``1 <= sequence_length <= T``, and steps after it are ignored.
    """
    X, Y, h0, Wx, Wh, Wy, S = bptt_args(inputs, targets, hidden_state, weights, sequence_length)
    grads = {k: np.empty(w.shape, dtype=w.dtype) for k, w in zip(KEYS, (Wx, Wh, Wy))}
    hyper = _core.BpttHyper(sequence_length=S)
    loss = _core.bptt("bptt", X, Y, h0, (Wx, Wh, Wy), (grads["Wx"], grads["Wh"], grads["Wy"]), hyper)
    return grads, loss
