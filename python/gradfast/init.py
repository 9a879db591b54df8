"""Rust-backed weight initialization: each layer drawn in parallel straight into its dtype."""

from __future__ import annotations

import numpy as np

from . import _core
from ._base.init import layers


def initialize_weights(
    layer_dims, initialization="he", *, distribution="normal", seed=None, dtype=np.float64
) -> dict[str, np.ndarray]:
    """Weights ``W{l}`` of shape ``(dims[l], dims[l-1])`` and zero biases ``b{l}`` ``(dims[l], 1)``.

    ``initialization`` is ``'he'`` (scale from ``fan_in = dims[l-1]``) or ``'xavier'``
    (from ``fan_in + fan_out``); ``distribution='normal'`` draws ``std * z`` with
    ``std = sqrt(2 / fan_in)`` or ``sqrt(2 / (fan_in + fan_out))``, ``'uniform'`` draws in
    ``[-limit, limit)`` with ``limit = sqrt(6 / fan_in)`` or ``sqrt(6 / (fan_in + fan_out))``.
    Equal ``seed`` gives equal weights (``None``: a fresh seed per call), bit for bit those of
    ``gradfast.reference.initialize_weights``, whatever the number of threads. ``dtype`` is
    float32 or float64.
    """
    fn = "initialize_weights"
    dt, seed, normal, each = layers(fn, layer_dims, initialization, distribution, seed, dtype)
    weights: dict[str, np.ndarray] = {}
    for l, fan_out, fan_in, scale in each:  # noqa: E741 (the original design's and the literature's name)
        w = np.empty((fan_out, fan_in), dtype=dt)
        _core.init_fill(fn, w, _core.InitHyper(seed=seed, layer=l, normal=normal, scale=scale))
        weights[f"W{l}"] = w
        weights[f"b{l}"] = np.zeros((fan_out, 1), dtype=dt)
    return weights
