"""Rust-backed gradient clipping: global-norm (in one call, or torch's split into
``get_total_norm`` and ``clip_grads_with_norm``), by value, unit-wise adaptive (AGC) and the
adaptive per-tensor clipper, each over a whole dict in one call."""

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


def get_total_norm(
    gradients: Mapping[Any, np.ndarray],
    norm_type: float | str = 2.0,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    """The global ``norm_type``-norm of all gradients together, as ``torch.nn.utils.get_total_norm``
    (a Python float here): the norm of the per-array norms, accumulated in float64, exactly the
    norm ``clip_grad_norm`` computes. 0 for an empty dict; with ``error_if_nonfinite=True`` a NaN
    or infinite norm raises ``ValueError``. The gradients are only read.
    """
    fn = "get_total_norm"
    p = _validate.norm_type(fn, norm_type)
    error_if_nonfinite = _validate.flag(fn, "error_if_nonfinite", error_if_nonfinite)
    return _core.get_total_norm(fn, gradients, _core.TotalNormHyper(norm_type=p, error_if_nonfinite=error_if_nonfinite))


def clip_grads_with_norm(
    gradients: Mapping[Any, np.ndarray], max_norm: float, total_norm: float
) -> Mapping[Any, np.ndarray]:
    """Scale all gradients in place by ``min(1, max_norm / (total_norm + 1e-6))``, as
    ``torch.nn.utils.clip_grads_with_norm_``: the second half of ``clip_grad_norm``, for a norm
    ``get_total_norm`` (or a collective over processes) computed. ``total_norm`` may be any
    number; NaN makes every gradient NaN, as torch. Returns ``gradients``.
    """
    fn = "clip_grads_with_norm"
    max_norm = _validate.number(fn, "max_norm", max_norm, lo=0.0)
    total_norm = _validate.real(fn, "total_norm", total_norm)
    _core.clip_grads_with_norm(fn, gradients, _core.ClipGradsWithNormHyper(max_norm=max_norm, total_norm=total_norm))
    return gradients


def clip_grad_value(gradients: Mapping[Any, np.ndarray], clip_value: float) -> Mapping[Any, np.ndarray]:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_`` (``clip_value`` finite, >= 0, rounded once to the
    dtype); NaN stays NaN, ``-0.0`` stays ``-0.0``. Returns ``gradients``.
    """
    fn = "clip_grad_value"
    clip_value = _validate.number(fn, "clip_value", clip_value, lo=0.0)
    _core.clip_grad_value(fn, gradients, _core.ClipGradValueHyper(clip_value=clip_value))
    return gradients


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
