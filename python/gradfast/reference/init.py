"""Reference weight initialization (Xavier/Glorot and He), from the counter-based stream."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import _validate
from . import _random

_INITS = ("he", "xavier")
_DISTS = ("normal", "uniform")


def _layer_dims(fn: str, layer_dims: object) -> list[int]:
    if isinstance(layer_dims, np.ndarray):
        if layer_dims.ndim != 1 or not np.issubdtype(layer_dims.dtype, np.integer):
            raise TypeError(f"{fn}: layer_dims must be a sequence of ints, got {_validate._describe(layer_dims)}")
        layer_dims = layer_dims.tolist()
    if isinstance(layer_dims, (str, bytes)) or not isinstance(layer_dims, Sequence):
        raise TypeError(f"{fn}: layer_dims must be a sequence of ints, got {type(layer_dims).__name__}")
    dims = [_validate.integer(fn, f"layer_dims[{i}]", d, lo=1) for i, d in enumerate(layer_dims)]
    if len(dims) < 2:
        raise ValueError(f"{fn}: layer_dims must have at least 2 entries (input and one layer), got {len(dims)}")
    return dims


def _choice(fn: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{fn}: {name} must be one of {allowed}, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{fn}: {name} must be one of {allowed}, got {value!r}")
    return value


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

    Seed deviations: the seed drew from ``np.random``'s global state (no ``seed``) and
    returned biases without weights for an unknown ``initialization`` name; here names
    are checked and ``distribution``, ``seed`` and ``dtype`` are added.
    """
    fn = "initialize_weights"
    dims = _layer_dims(fn, layer_dims)
    initialization = _choice(fn, "initialization", initialization, _INITS)
    distribution = _choice(fn, "distribution", distribution, _DISTS)
    dt = _validate.float_dtype_arg(fn, dtype)
    seed = _random.resolve_seed(seed, fn)

    weights: dict[str, np.ndarray] = {}
    for l in range(1, len(dims)):  # noqa: E741 (the seed's and the literature's name)
        fan_in, fan_out = dims[l - 1], dims[l]
        denom = fan_in + fan_out if initialization == "xavier" else fan_in
        n = fan_out * fan_in
        if distribution == "normal":
            w = _random.normal(seed, l, n) * math.sqrt(2.0 / denom)
        else:
            w = (2.0 * _random.uniform(seed, l, n) - 1.0) * math.sqrt(6.0 / denom)
        weights[f"W{l}"] = w.reshape(fan_out, fan_in).astype(dt)
        weights[f"b{l}"] = np.zeros((fan_out, 1), dtype=dt)
    return weights
