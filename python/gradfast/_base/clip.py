"""Declaration of the original design's adaptive clipper: hyper-parameters, state, docstring.

The siblings that subclass it (``gradfast.clip`` in Rust, ``gradfast.reference.clip`` in
NumPy) implement ``clip_gradients``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validate
from .locked import Locked
from .optimizer import Hyper


class AdaptiveClipperBase(Locked):
    """Per-tensor L2 clipping against a threshold that follows the largest per-tensor norm.

    Each ``clip_gradients(gradients)`` call, in this order:

    1. ``x`` = the largest L2 norm (float64) among the tensors whose norm is finite. If there
       is one, the running state is updated with ``r = adaptation_rate``::

           running_max    = (1 - r) * running_max    + r * x
           running_weight = (1 - r) * running_weight + r      # = 1 - (1 - r)**n after n updates

       (a bias-corrected exponential moving average: ``running_max / running_weight``).
    2. ``clip_value = min(init_clip_value, max(min_clip_value, running_max / running_weight))``,
       or ``init_clip_value`` while ``running_weight == 0`` (no observation yet, or ``r = 0``).
    3. A tensor whose norm is finite and ``> clip_value`` comes back as a new array
       C-contiguous ``g * (clip_value / norm)`` (the factor rounded once to ``g``'s dtype), so its norm is
       ``clip_value`` up to rounding; every other tensor is passed through as the same object.

    So the current call's norms count before it is clipped (as in the original code), the threshold
    never exceeds ``init_clip_value`` and never falls below ``min_clip_value`` (> 0; default
    ``1e-3 * init_clip_value``), and steady norms ``x < init_clip_value`` give ``clip_value -> x``.
    The original design's ``min(clip_value, running_max)`` with ``running_max`` starting at 0 could only
    fall, and collapsed towards 0. Tensors with NaN or inf norms are neither clipped nor
    observed. ``clip_value`` is derived from the state; ``state_dict()`` / ``load_state_dict()``
    save and restore ``running_max`` and ``running_weight``.
    """

    init_clip_value = Hyper(lo=0.0, lo_open=True)
    adaptation_rate = Hyper(lo=0.0, hi=1.0)
    min_clip_value = Hyper(lo=0.0, lo_open=True)

    def __init__(self, init_clip_value=1.0, adaptation_rate=0.01, *, min_clip_value=None) -> None:
        super().__init__()
        fn = "AdaptiveClipper"
        self.init_clip_value = init_clip_value
        self.adaptation_rate = adaptation_rate
        self.min_clip_value = 1e-3 * self.init_clip_value if min_clip_value is None else min_clip_value
        if self.min_clip_value > self.init_clip_value:
            raise ValueError(
                f"{fn}: min_clip_value must be <= init_clip_value ({self.init_clip_value}), got {min_clip_value!r}"
            )
        self.running_max = 0.0
        self.running_weight = 0.0

    @property
    def clip_value(self) -> float:
        """The current threshold (the one the last call clipped with)."""
        if self.running_weight == 0.0:
            return self.init_clip_value
        return min(self.init_clip_value, max(self.min_clip_value, self.running_max / self.running_weight))

    def clip_gradients(self, gradients: Mapping[Any, np.ndarray]) -> dict[Any, np.ndarray]:
        """Update the threshold with this call's norms, then clip each tensor to it; a new dict."""
        fn = "AdaptiveClipper.clip_gradients"
        with self._lock:
            return self._clip(fn, gradients)

    def _clip(self, fn: str, gradients) -> dict[Any, np.ndarray]:
        """Validate ``gradients``, then observe, clip and commit the new state."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The clipper's state as plain numbers: ``running_max`` and ``running_weight``."""
        with self._lock:
            return {"running_max": self.running_max, "running_weight": self.running_weight}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Resume from ``d`` (a ``state_dict()``); a bad ``d`` raises ``ValueError`` and changes nothing."""
        fn = "AdaptiveClipper.load_state_dict"
        if not isinstance(d, Mapping) or not {"running_max", "running_weight"} <= set(d):
            raise ValueError(f"{fn}: d must be a dict with keys 'running_max', 'running_weight', got {d!r:.80}")
        running_max = _validate.number(fn, "d['running_max']", d["running_max"], lo=0.0)
        running_weight = _validate.number(fn, "d['running_weight']", d["running_weight"], lo=0.0, hi=1.0)
        with self._lock:
            self.running_max, self.running_weight = running_max, running_weight
