"""The natural logarithm and cosine of the normal draws, written out in float64 operations.

``np.log`` and ``np.cos`` differ from one NumPy build, CPU and C library to the next in their
last bits, so the normals of ``_random`` take these instead: fdlibm's algorithms
(``__ieee754_log``; ``__cos`` with its reduction by pi/2 in three steps and its
``__kernel_cos``/``__kernel_sin``), with the large additions and the squares carried exactly
(``_two_sum``, ``_two_prod``) so that nearly every result is the correctly rounded one. Every
step is one IEEE operation on float64 (or integer work on the bits), so any implementation that
performs the same operations in the same order gets the same bits: the Rust kernels do (with a
fused multiply-add for ``_two_prod``, which yields the same exact error).

Domains: ``log`` for normal ``x > 0`` (``1 - u`` of a uniform ``u``), ``cos`` for ``x`` in
[0, 8) (``2 pi u``).
"""

from __future__ import annotations

import struct

import numpy as np


def _f(bits: int) -> float:
    """The float64 with these bits."""
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


_U64 = np.uint64
_LN2_HI, _LN2_LO = _f(0x3FE62E42FEE00000), _f(0x3DEA39EF35793C76)
_LG = [_f(b) for b in (0x3FE5555555555593, 0x3FD999999997FA04, 0x3FD2492494229359, 0x3FCC71C51D8E78AF,
                       0x3FC7466496CB03DE, 0x3FC39A09D078C69F, 0x3FC2F112DF3E5244)]  # fmt: skip
_C = [_f(b) for b in (0x3FA555555555554C, 0xBF56C16C16C15177, 0x3EFA01A019CB1590,
                      0xBE927E4F809C52AD, 0x3E21EE9EBDB4B1C4, 0xBDA8FAE9BE8838D4)]  # fmt: skip
_S = [_f(b) for b in (0xBFC5555555555549, 0x3F8111111110F8A6, 0xBF2A01A019C161D5,
                      0x3EC71DE357B1FE7D, 0xBE5AE5E68A2B9CEB, 0x3DE5D93A5ACFD57C)]  # fmt: skip
_TWO52 = 2.0**52
_TOINT = 1.5 * 2.0**52
_INVPIO2 = _f(0x3FE45F306DC9C883)
_PIO2 = [_f(b) for b in (0x3FF921FB54400000, 0x3DD0B4611A600000, 0x3BA3198A2E000000, 0x397B839A252049C1)]


def _two_sum(a, b):
    """``a + b`` rounded, and its exact error (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    """``a`` as the sum of two halves of 26 bits (Veltkamp)."""
    t = 134217729.0 * a  # 2**27 + 1
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a, b):
    """``a * b`` rounded, and its exact error (Dekker; no overflow or underflow here)."""
    p = a * b
    (ah, al), (bh, bl) = _split(a), _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def log(x: np.ndarray) -> np.ndarray:
    """``ln(x)``: ``x = 2**k m`` with ``m`` in [sqrt(2)/2, sqrt(2)), ``ln(m)`` from fdlibm's
    polynomial in ``s = (m - 1) / (m + 1)``."""
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    bits = np.asarray(x, dtype=np.float64).view(_U64)
    # shift the mantissa range so that the exponent read off is that of m
    hx = (bits >> _U64(32)) + _U64(0x3FF00000 - 0x3FE6A09E)
    hm = (hx & _U64(0x000FFFFF)) + _U64(0x3FE6A09E)
    m = ((hm << _U64(32)) | (bits & _U64(0xFFFFFFFF))).view(np.float64)
    f = m - 1.0
    ff, ff_lo = _two_prod(f, f)
    hfsq, hfsq_lo = 0.5 * ff, 0.5 * ff_lo
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (lg2 + w * (lg4 + w * lg6))
    t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
    r = t2 + t1
    # the exponent k as a float, exactly: 2**52 + (hx >> 20) minus 2**52 + 1023
    dk = ((hx >> _U64(20)) | _U64(0x4330000000000000)).view(np.float64) - (_TWO52 + 1023.0)
    small = s * (hfsq + r) + dk * _LN2_LO
    s1, e1 = _two_sum(dk * _LN2_HI, f)
    s2, e2 = _two_sum(s1, -hfsq)
    return s2 + (((e1 + e2) - hfsq_lo) + small)


def _kernel_cos(x, y):
    """cos(x + y) for |x| <= pi/4, ``y`` the tail of ``x``."""
    c1, c2, c3, c4, c5, c6 = _C
    z, z_lo = _two_prod(x, x)
    w = z * z
    r = z * (c1 + z * (c2 + z * c3)) + w * w * (c4 + z * (c5 + z * c6))
    hz, hz_lo = 0.5 * z, 0.5 * z_lo
    w = 1.0 - hz
    return w + ((((1.0 - w) - hz) - hz_lo) + (z * r - x * y))


def _kernel_sin(x, y):
    """sin(x + y) for |x| <= pi/4: fdlibm's ``x + (y - z y / 2 + z v r) + v S1`` (``v = x**3``),
    ``x + v S1`` summed in double-double."""
    s1, s2, s3, s4, s5, s6 = _S
    z, z_lo = _two_prod(x, x)
    w = z * z
    r = s2 + z * (s3 + z * s4) + z * w * (s5 + z * s6)
    v, v_e = _two_prod(z, x)
    v_lo = v_e + z_lo * x
    a, a_e = _two_prod(v, s1)
    a_lo = a_e + v_lo * s1
    small = (y - 0.5 * z * y + z * v * r) + a_lo
    t, e = _two_sum(x, a)
    return t + (e + small)


def cos(x: np.ndarray) -> np.ndarray:
    """``cos(x)`` for ``x`` in [0, 8): ``x - n pi/2`` with 151 bits of pi/2 (exact for these
    ``x``), then the cosine or sine kernel by quadrant ``n``."""
    x = np.asarray(x, dtype=np.float64)
    pio2_1, pio2_2, pio2_3, pio2_3t = _PIO2
    t = x * _INVPIO2 + _TOINT
    n = t.view(_U64) & _U64(3)
    fn = t - _TOINT
    r1 = x - fn * pio2_1
    w2 = fn * pio2_2
    r2 = r1 - w2
    e2 = (r1 - r2) - w2
    w3 = fn * pio2_3
    r3 = r2 - w3
    e3 = (r2 - r3) - w3
    w = fn * pio2_3t - e3 - e2
    y0 = r3 - w
    y1 = (r3 - y0) - w
    # quadrant n: cos, -sin, -cos, sin
    odd = (n & _U64(1)) == 1
    v = np.empty_like(x)
    v[~odd] = _kernel_cos(y0[~odd], y1[~odd])
    v[odd] = _kernel_sin(y0[odd], y1[odd])
    return np.where((n + _U64(1)) & _U64(2) == 0, v, -v)
