"""Rust-backed weight initialization: each layer drawn in parallel straight into its dtype."""

from __future__ import annotations

import numpy as np

from . import _core
from ._base.init import layers
from .reference import init as _ref


def initialize_weights(
    layer_dims, initialization="he", *, distribution="normal", seed=None, dtype=np.float64
) -> dict[str, np.ndarray]:
    fn = "initialize_weights"
    dt, seed, normal, each = layers(fn, layer_dims, initialization, distribution, seed, dtype)
    weights: dict[str, np.ndarray] = {}
    for l, fan_out, fan_in, scale in each:  # noqa: E741 (the original design's and the literature's name)
        w = np.empty((fan_out, fan_in), dtype=dt)
        _core.init_fill(fn, w, seed, l, normal, scale)
        weights[f"W{l}"] = w
        weights[f"b{l}"] = np.zeros((fan_out, 1), dtype=dt)
    return weights


initialize_weights.__doc__ = _ref.initialize_weights.__doc__
