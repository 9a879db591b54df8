"""Rust-backed gradient clipping: global-norm clipping over a whole dict in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from .reference import clip as _ref


def clip_grad_norm(
    gradients: Mapping[Any, np.ndarray],
    max_norm: float,
    norm_type: float | str = 2.0,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    fn = "clip_grad_norm"
    max_norm = _validate.number(fn, "max_norm", max_norm, lo=0.0)
    p = _validate.norm_type(fn, norm_type)
    error_if_nonfinite = _validate.flag(fn, "error_if_nonfinite", error_if_nonfinite)
    return _core.clip_grad_norm(fn, gradients, max_norm, p, error_if_nonfinite)


clip_grad_norm.__doc__ = _ref.clip_grad_norm.__doc__
