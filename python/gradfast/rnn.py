"""Rust-backed backpropagation through time for a vanilla (tanh) RNN."""

from __future__ import annotations

import numpy as np

from . import _core
from .reference import rnn as _ref


def bptt(inputs, targets, hidden_state, weights, sequence_length):
    fn = "bptt"
    X, Y, h0, Wx, Wh, Wy, S = _ref.arguments(fn, inputs, targets, hidden_state, weights, sequence_length)
    grads = {k: np.empty(w.shape, dtype=w.dtype) for k, w in zip(_ref.KEYS, (Wx, Wh, Wy))}
    loss = _core.bptt(fn, X, Y, h0, Wx, Wh, Wy, S, grads["Wx"], grads["Wh"], grads["Wy"])
    return grads, loss


bptt.__doc__ = _ref.bptt.__doc__
