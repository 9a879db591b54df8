"""Rust-backed gradient clipping: global-norm (in one call, or torch's split into
``get_total_norm`` and ``clip_grads_with_norm``), by value, unit-wise adaptive (AGC) and the
seed's adaptive per-tensor clipping, each over a whole dict in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from ._base.clip import AdaptiveClipperBase
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


def get_total_norm(
    gradients: Mapping[Any, np.ndarray],
    norm_type: float | str = 2.0,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    fn = "get_total_norm"
    p = _validate.norm_type(fn, norm_type)
    error_if_nonfinite = _validate.flag(fn, "error_if_nonfinite", error_if_nonfinite)
    return _core.get_total_norm(fn, gradients, p, error_if_nonfinite)


get_total_norm.__doc__ = _ref.get_total_norm.__doc__


def clip_grads_with_norm(
    gradients: Mapping[Any, np.ndarray], max_norm: float, total_norm: float
) -> Mapping[Any, np.ndarray]:
    fn = "clip_grads_with_norm"
    max_norm = _validate.number(fn, "max_norm", max_norm, lo=0.0)
    total_norm = _validate.real(fn, "total_norm", total_norm)
    _core.clip_grads_with_norm(fn, gradients, max_norm, total_norm)
    return gradients


clip_grads_with_norm.__doc__ = _ref.clip_grads_with_norm.__doc__


def clip_grad_value(gradients: Mapping[Any, np.ndarray], clip_value: float) -> Mapping[Any, np.ndarray]:
    fn = "clip_grad_value"
    clip_value = _validate.number(fn, "clip_value", clip_value, lo=0.0)
    _core.clip_grad_value(fn, gradients, clip_value)
    return gradients


clip_grad_value.__doc__ = _ref.clip_grad_value.__doc__


def adaptive_grad_clip(
    gradients: Mapping[Any, np.ndarray],
    params: Mapping[Any, np.ndarray],
    clipping: float = 0.01,
    eps: float = 1e-3,
) -> Mapping[Any, np.ndarray]:
    fn = "adaptive_grad_clip"
    clipping = _validate.number(fn, "clipping", clipping, lo=0.0)
    eps = _validate.number(fn, "eps", eps, lo=0.0)
    _core.adaptive_grad_clip(fn, gradients, params, clipping, eps)
    return gradients


adaptive_grad_clip.__doc__ = _ref.adaptive_grad_clip.__doc__


class AdaptiveClipper(AdaptiveClipperBase):
    __doc__ = AdaptiveClipperBase.__doc__
    _new_lock = _core.StepLock

    def _clip(self, fn, gradients):
        hyper = _core.AdaptiveClipHyper(
            init_clip_value=self.init_clip_value,
            adaptation_rate=self.adaptation_rate,
            min_clip_value=self.min_clip_value,
        )
        return _core.adaptive_clip(fn, self, gradients, hyper)
