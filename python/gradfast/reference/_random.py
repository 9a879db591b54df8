"""The counter-based random stream shared by every random gradfast routine.

Each random number is a pure function of ``(seed, stream, i)``: no state advances, so any
thread can compute any element and every thread count gives the same numbers. The Rust
kernels reproduce this module bit for bit. All integer arithmetic is modulo 2**64::

    MASK   = 2**64 - 1
    GOLDEN = 0x9E3779B97F4A7C15

    mix64(z):                       # the splitmix64 finalizer
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        return z ^ (z >> 31)

    key(seed, stream)  = mix64(seed ^ mix64(stream + GOLDEN))
    bits(seed, stream, i) = mix64(key(seed, stream) + (i + 1) * GOLDEN)   # i = 0, 1, 2, ...

    uniform_i = float64(bits_i >> 11) * 2**-53                         # in [0, 1), exact
    normal_i  = sqrt(-2.0 * log(1.0 - u1)) * cos((2.0 * pi) * u2)      # Box-Muller
                with u1 = uniform at counter 2*i, u2 = uniform at counter 2*i + 1

Elements of an array are numbered in C order. ``1.0 - u1`` is exact and lies in
(0, 1], so the logarithm is finite; ``2.0 * pi`` is the float64 constant 2*math.pi and
is multiplied by ``u2`` afterwards. The uniforms are exact integers scaled by a power of
two; ``log`` and ``cos`` are those of ``_libm`` (fdlibm's, nearly always correctly rounded),
written out in float64 operations rather than taken from NumPy or the C library, whose last
bits vary between builds: every number of the stream is reproducible bit for bit.

``seed`` and ``stream`` are ints in [0, 2**64). Which stream each routine uses is
documented with the routine (``initialize_weights``: the layer index; ``Dropout``: the
number of training-mode forward calls made before).
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import u64 as _u64_arg
from . import _libm

MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15

_U64 = np.uint64
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_G = _U64(GOLDEN)
_S30, _S27, _S31, _S11 = _U64(30), _U64(27), _U64(31), _U64(11)


def mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on a uint64 array (wrapping arithmetic, returns a new array)."""
    z = np.asarray(z, dtype=np.uint64)
    # Array arithmetic on uint64 wraps silently, which is exactly the mod 2**64 we want.
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def key(seed: int, stream: int) -> int:
    """``mix64(seed ^ mix64(stream + GOLDEN))`` as a Python int."""
    seed = _u64_arg("key", "seed", seed)
    stream = _u64_arg("key", "stream", stream)
    inner = mix64(np.array([stream], dtype=np.uint64) + _G)
    return int(mix64(np.array([seed], dtype=np.uint64) ^ inner)[0])


def bits(seed: int, stream: int, n: int, *, start: int = 0) -> np.ndarray:
    """uint64 words for counters ``start, ..., start + n - 1``: ``mix64(key + (i + 1) * GOLDEN)``."""
    n = _u64_arg("bits", "n", n)
    start = _u64_arg("bits", "start", start)
    k = _U64(key(seed, stream))
    # i + 1 wraps like the Rust u64 counter would; n is small enough in practice that it never does.
    counters = np.arange(n, dtype=np.uint64) + _U64((start + 1) & MASK)
    return mix64(counters * _G + k)


def uniform(seed: int, stream: int, n: int) -> np.ndarray:
    """``n`` float64 uniforms in [0, 1): the top 53 bits of each word times 2**-53."""
    return (bits(seed, stream, n) >> _S11).astype(np.float64) * 2.0**-53


#: normals computed per block of this many: the temporaries of ``_libm`` stay in cache
_BLOCK = 1 << 16


def normal(seed: int, stream: int, n: int) -> np.ndarray:
    """``n`` float64 standard normals by Box-Muller from counters ``2i`` (u1) and ``2i+1`` (u2)."""
    n = _u64_arg("normal", "n", n)
    u = uniform(seed, stream, 2 * n)
    out = np.empty(n)
    for i in range(0, n, _BLOCK):
        u1, u2 = u[2 * i : 2 * (i + _BLOCK) : 2], u[2 * i + 1 : 2 * (i + _BLOCK) : 2]
        out[i : i + _BLOCK] = np.sqrt(-2.0 * _libm.log(1.0 - u1)) * _libm.cos((2.0 * math.pi) * u2)
    return out
