"""An independent scalar implementation of the counter-based stream's spec, in Python ints.

The tests of the stream, of dropout and of initialization hold the vectorized NumPy code to it.
"""

from __future__ import annotations

import math

M64 = 2**64
GOLDEN = 0x9E3779B97F4A7C15


def s_mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    return z ^ (z >> 31)


def s_bits(seed: int, stream: int, i: int) -> int:
    k = s_mix64(seed ^ s_mix64((stream + GOLDEN) % M64))
    return s_mix64((k + (i + 1) * GOLDEN) % M64)


def s_uniform(seed: int, stream: int, i: int) -> float:
    return (s_bits(seed, stream, i) >> 11) / 2.0**53


def s_normal(seed: int, stream: int, i: int) -> float:
    u1, u2 = s_uniform(seed, stream, 2 * i), s_uniform(seed, stream, 2 * i + 1)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
