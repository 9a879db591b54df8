"""ATen's ``lerp``, shared by the reference optimizers that port torch code using it."""

from __future__ import annotations


def lerp_(a, b, weight) -> None:
    """``a.lerp_(b, weight)`` in place, with ATen's two branches: ``a + w * (b - a)`` when
    ``|w| < 0.5``, else ``b - (b - a) * (1 - w)``; ``w`` is ``weight`` rounded to ``a``'s dtype."""
    t = a.dtype.type
    w = t(weight)
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (t(1) - w)
