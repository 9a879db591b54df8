"""The gradient torch's optimizers step with: negated for ``maximize``, then L2 weight decay."""

from __future__ import annotations

import numpy as np


def gradient(g: np.ndarray, p: np.ndarray, maximize: bool, weight_decay: float) -> np.ndarray:
    """``-g`` if ``maximize``, then ``g + weight_decay * p`` (``grad.add(param, alpha=wd)``)
    when ``weight_decay != 0``; a new array where either applies, ``g`` itself otherwise.
    Call it inside ``np.errstate(all='ignore')``."""
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + p.dtype.type(weight_decay) * p
    return g
