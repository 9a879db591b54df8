"""The arguments of ``initialize_weights``, read once for both implementations."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .. import _validate

INITS = ("he", "xavier")
DISTS = ("normal", "uniform")


def layers(
    fn: str, layer_dims, initialization, distribution, seed, dtype
) -> tuple[np.dtype, int, bool, Iterator[tuple[int, int, int, float]]]:
    """Checks the arguments; returns the dtype, the seed, whether draws are normal, and per
    layer ``(l, fan_out, fan_in, scale)`` with ``scale`` the std (normal) or limit (uniform)."""
    dims = _validate.layer_dims(fn, layer_dims)
    initialization = _validate.choice(fn, "initialization", initialization, INITS)
    normal = _validate.choice(fn, "distribution", distribution, DISTS) == "normal"
    dt = _validate.float_dtype_arg(fn, dtype)
    seed = _validate.resolve_seed(seed, fn)

    def each() -> Iterator[tuple[int, int, int, float]]:
        for l in range(1, len(dims)):  # noqa: E741 (the original design's and the literature's name)
            fan_in, fan_out = dims[l - 1], dims[l]
            denom = fan_in + fan_out if initialization == "xavier" else fan_in
            yield l, fan_out, fan_in, math.sqrt((2.0 if normal else 6.0) / denom)

    return dt, seed, normal, each()
