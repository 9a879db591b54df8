"""Reference weight initialization (Xavier/Glorot and He), from the counter-based stream."""

from __future__ import annotations

import numpy as np

from .._base.init import layers
from . import _random


def initialize_weights(
    layer_dims, initialization="he", *, distribution="normal", seed=None, dtype=np.float64
) -> dict[str, np.ndarray]:
    """Weights ``W{l}`` of shape ``(dims[l], dims[l-1])`` and zero biases ``b{l}`` ``(dims[l], 1)``.

    With ``fan_in = dims[l-1]`` and ``fan_out = dims[l]``:

    - ``distribution='normal'``: ``W = std * z``, ``z`` standard normal, with
      ``std = sqrt(2 / (fan_in + fan_out))`` (``'xavier'``) or ``sqrt(2 / fan_in)`` (``'he'``);
    - ``distribution='uniform'``: ``W = (2u - 1) * limit``, ``u`` uniform in [0, 1), with
      ``limit = sqrt(6 / (fan_in + fan_out))`` (``'xavier'``) or ``sqrt(6 / fan_in)`` (``'he'``).

    Random stream: layer ``l`` (1, 2, ...) uses ``_random.normal(seed, l, fan_out*fan_in)``
    or ``_random.uniform(seed, l, fan_out*fan_in)``, filled in C order. ``std``/``limit``
    are float64 (``math.sqrt``); the product is formed in float64 and rounded once to
    ``dtype``. ``seed=None`` draws one fresh seed per call.

    Deviations from the original design: the original code drew from ``np.random``'s global
    state (no ``seed``) and returned biases without weights for an unknown ``initialization``
    name; here names are checked and ``distribution``, ``seed`` and ``dtype`` are added.
    """
    dt, seed, normal, each = layers("initialize_weights", layer_dims, initialization, distribution, seed, dtype)
    weights: dict[str, np.ndarray] = {}
    for l, fan_out, fan_in, scale in each:  # noqa: E741 (the original design's and the literature's name)
        n = fan_out * fan_in
        if normal:
            w = _random.normal(seed, l, n) * scale
        else:
            w = (2.0 * _random.uniform(seed, l, n) - 1.0) * scale
        weights[f"W{l}"] = w.reshape(fan_out, fan_in).astype(dt)
        weights[f"b{l}"] = np.zeros((fan_out, 1), dtype=dt)
    return weights
