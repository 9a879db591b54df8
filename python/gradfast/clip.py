"""Rust-backed gradient clipping: global-norm, unit-wise adaptive (AGC) and the adaptive
per-tensor clipper, each over a whole dict in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from ._base.clip import AdaptiveClipperBase


def clip_grad_norm(
    gradients: Mapping[Any, np.ndarray],
    max_norm: float,
    norm_type: float | str = 2.0,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their global norm is at most ``max_norm``.

    The global norm is the ``norm_type``-norm of the per-array norms (``inf``: the largest
    absolute value), accumulated in float64 (the same bits for any thread count). The scale
    is ``min(1, max_norm / (norm + 1e-6))`` and is applied to every array, as
    ``torch.nn.utils.clip_grad_norm_`` does. Returns the global norm before clipping. With
    ``error_if_nonfinite=True`` a NaN or infinite norm raises ``ValueError`` and nothing is
    changed.
    """
    fn = "clip_grad_norm"
    hyper = _core.ClipGradNormHyper(
        max_norm=_validate.number(fn, "max_norm", max_norm, lo=0.0),
        norm_type=_validate.norm_type(fn, norm_type),
        error_if_nonfinite=_validate.flag(fn, "error_if_nonfinite", error_if_nonfinite),
    )
    return _core.clip_grad_norm(fn, gradients, hyper)


def adaptive_grad_clip(
    gradients: Mapping[Any, np.ndarray],
    params: Mapping[Any, np.ndarray],
    clipping: float = 0.01,
    eps: float = 1e-3,
) -> Mapping[Any, np.ndarray]:
    """Unit-wise adaptive gradient clipping (Brock et al., 2021, "High-Performance
    Large-Scale Image Recognition Without Normalization"), in place on ``gradients``.

    A unit is a row along axis 0 of an array of two or more dimensions (an output unit), or
    the whole array for 0-d and 1-d arrays. A unit whose gradient norm exceeds
    ``clipping * max(||w||, eps)`` (``w``: its parameters) is scaled to that norm; the others
    are not written. Norms and factors are float64, the factor rounded once to the dtype.
    Same numbers as optax's ``adaptive_grad_clip``. Returns ``gradients``.
    """
    fn = "adaptive_grad_clip"
    hyper = _core.AdaptiveGradClipHyper(
        clipping=_validate.number(fn, "clipping", clipping, lo=0.0),
        eps=_validate.number(fn, "eps", eps, lo=0.0),
    )
    _core.adaptive_grad_clip(fn, gradients, params, hyper)
    return gradients


class AdaptiveClipper(AdaptiveClipperBase):
    __doc__ = AdaptiveClipperBase.__doc__
    _new_lock = _core.StepLock

    def _clip(self, fn, gradients):
        hyper = _core.AdaptiveClipperHyper(
            init_clip_value=self.init_clip_value,
            adaptation_rate=self.adaptation_rate,
            min_clip_value=self.min_clip_value,
        )
        out, self.running_max, self.running_weight = _core.adaptive_clipper(
            fn, gradients, self.running_max, self.running_weight, hyper
        )
        return out
