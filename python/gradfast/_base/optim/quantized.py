"""The layout of 8-bit optimizer state (``state_dtype='8bit'``), shared by both implementations.

bitsandbytes' block-wise layout: a state slot of an array of ``n >= MIN_ELEMENTS`` float32
values is kept as ``n`` ``uint8`` codes under the slot's name and one float32 absolute maximum
per block of ``BLOCK`` values under ``<slot>_absmax``; smaller arrays keep float32 state.
"""

from __future__ import annotations

import numpy as np

#: values per block, each block with one float32 maximum
BLOCK = 256
#: arrays with fewer elements keep float32 state (bitsandbytes' ``min_8bit_size``)
MIN_ELEMENTS = 4096

_F32, _U8 = np.dtype(np.float32), np.dtype(np.uint8)


def maxima_slot(slot: str) -> str:
    """The name of the block maxima of ``slot``."""
    return f"{slot}_absmax"


def layout(slots: tuple[str, ...], shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The state arrays of one parameter of ``shape``: ``{name: (shape, dtype)}``."""
    n = int(np.prod(shape))
    if n < MIN_ELEMENTS:
        return {s: (shape, _F32) for s in slots}
    blocks = (n + BLOCK - 1) // BLOCK
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for s in slots:
        out[s] = (shape, _U8)
        out[maxima_slot(s)] = ((blocks,), _F32)
    return out


def fresh(slots: tuple[str, ...], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Zero state of one parameter (all codes 0, all maxima 0: every value 0)."""
    return {name: np.zeros(sh, dt) for name, (sh, dt) in layout(slots, shape).items()}


def check(fn: str, key, slots: tuple[str, ...], p: np.ndarray, entry) -> None:
    """``entry`` (one parameter's state) has the arrays ``layout`` gives, or a ``ValueError``
    or ``TypeError`` naming the first that differs."""
    for name, (shape, dtype) in layout(slots, p.shape).items():
        where = f"state[{key!r}][{name!r}]"
        if name not in entry:
            raise ValueError(f"{fn}: {where} must be a state array, got it missing")
        a = entry[name]
        if not isinstance(a, np.ndarray) or a.dtype != dtype:
            got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"{fn}: {where} must have dtype {dtype} (8-bit state), got {got}")
        if a.shape != shape:
            raise ValueError(f"{fn}: {where} must have shape {shape}, got {a.shape}")
