"""Reference gradient clipping, in plain NumPy: global-norm clipping as
``torch.nn.utils.clip_grad_norm_``, unit-wise adaptive clipping (AGC; Brock, De, Smith and
Simonyan, "High-Performance Large-Scale Image Recognition Without Normalization", 2021,
arXiv 2102.06171, section 4.1) and the original design's adaptive per-tensor clipper, whose threshold
tracks the observed norms.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate
from .._base.clip import AdaptiveClipperBase


def vector_norm(a: np.ndarray, p: float = 2.0) -> float:
    """The ``p``-norm of the whole array (``inf``: the largest absolute value), accumulated in
    float64; 0 for an empty array. The one norm of every reference kernel."""
    flat = np.abs(a.astype(np.float64).ravel())
    if flat.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        if p == math.inf:
            return float(np.max(flat))
        if p == 2.0:
            return math.sqrt(float(np.dot(flat, flat)))
        return float(np.float64(np.sum(flat**p)) ** (1.0 / p))


def _gradients(fn: str, gradients, *, writeable: bool) -> list:
    """The items of a dict of float arrays of one dtype (written in place: not overlapping)."""
    grads = _validate.array_dict(fn, "gradients", gradients)
    dtype = None
    items = list(grads.items())
    for key, g in items:
        _validate.float_array(fn, f"gradients[{key!r}]", g, writeable=writeable)
        dtype = dtype or g.dtype
        _validate.same_dtype(fn, f"gradients[{key!r}]", g, dtype)
    if writeable:
        _validate.no_overlaps(fn, [(f"gradients[{k!r}]", g) for k, g in items])
    return items


def _total_norm(fn: str, items: list, p: float, norm_type, error_if_nonfinite: bool) -> float:
    """The ``p``-norm of the per-array norms (``inf``: their largest), in float64; 0 for none."""
    if not items:
        return 0.0
    with np.errstate(all="ignore"):
        n = np.array([vector_norm(g, p) for _, g in items])
        total = float(np.max(n)) if p == math.inf else float(np.float64(np.sum(n**p)) ** (1.0 / p))
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"{fn}: gradients must have a finite total norm of order {norm_type} when "
            f"error_if_nonfinite=True, got {total}"
        )
    return total


def _clip_to_norm(items: list, max_norm: float, total: float) -> None:
    """torch's factor ``min(1, max_norm / (total + 1e-6))`` (NaN for a NaN norm), rounded once
    to the dtype, times every array in place."""
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    with np.errstate(all="ignore"):
        for _, g in items:
            g *= g.dtype.type(coef)


def clip_grad_norm(gradients, max_norm, norm_type=2.0, *, error_if_nonfinite=False):
    """Scale all gradients in place so that their global norm is at most ``max_norm``.

    The global norm is the ``norm_type``-norm of the per-array norms (``inf``: the largest
    absolute value), accumulated in float64. The scale is ``min(1, max_norm / (norm + 1e-6))``
    and is applied to every array, as ``torch.nn.utils.clip_grad_norm_`` does. Returns the
    global norm before clipping. With ``error_if_nonfinite=True`` a NaN or infinite norm
    raises ``ValueError`` and nothing is changed. The same as ``get_total_norm`` followed by
    ``clip_grads_with_norm``, in one call.
    """
    fn = "clip_grad_norm"
    max_norm = _validate.number(fn, "max_norm", max_norm, lo=0.0)
    p = _validate.norm_type(fn, norm_type)
    error_if_nonfinite = _validate.flag(fn, "error_if_nonfinite", error_if_nonfinite)
    items = _gradients(fn, gradients, writeable=True)
    total = _total_norm(fn, items, p, norm_type, error_if_nonfinite)
    _clip_to_norm(items, max_norm, total)
    return total


def get_total_norm(gradients, norm_type=2.0, *, error_if_nonfinite=False):
    """The global ``norm_type``-norm of all gradients together, as ``torch.nn.utils.get_total_norm``
    (a Python float here): the norm of the per-array norms, accumulated in float64, exactly the
    norm ``clip_grad_norm`` computes. 0 for an empty dict; with ``error_if_nonfinite=True`` a NaN
    or infinite norm raises ``ValueError``. The gradients are only read.
    """
    fn = "get_total_norm"
    p = _validate.norm_type(fn, norm_type)
    error_if_nonfinite = _validate.flag(fn, "error_if_nonfinite", error_if_nonfinite)
    items = _gradients(fn, gradients, writeable=False)
    return _total_norm(fn, items, p, norm_type, error_if_nonfinite)


def clip_grads_with_norm(gradients, max_norm, total_norm):
    """Scale all gradients in place by ``min(1, max_norm / (total_norm + 1e-6))``, as
    ``torch.nn.utils.clip_grads_with_norm_``: the second half of ``clip_grad_norm``, for a norm
    ``get_total_norm`` (or a collective over processes) computed. ``total_norm`` may be any
    number; NaN makes every gradient NaN, as torch. Returns ``gradients``.
    """
    fn = "clip_grads_with_norm"
    max_norm = _validate.number(fn, "max_norm", max_norm, lo=0.0)
    total_norm = _validate.real(fn, "total_norm", total_norm)
    items = _gradients(fn, gradients, writeable=True)
    _clip_to_norm(items, max_norm, total_norm)
    return gradients


def clip_grad_value(gradients, clip_value):
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_`` (``clip_value`` finite, >= 0, rounded once to the
    dtype); NaN stays NaN, ``-0.0`` stays ``-0.0``. Returns ``gradients``.
    """
    fn = "clip_grad_value"
    clip_value = _validate.number(fn, "clip_value", clip_value, lo=0.0)
    items = _gradients(fn, gradients, writeable=True)
    for _, g in items:
        c = g.dtype.type(clip_value)
        np.clip(g, -c, c, out=g)
    return gradients


#: floor of a unit's gradient norm in the clipping factor, as in the paper's code
_GRAD_NORM_FLOOR = 1e-6


def _unit_norms(a: np.ndarray, n_units: int) -> np.ndarray:
    """Euclidean norm of each of the ``n_units`` rows of ``a``, in float64.

    ``a`` is first brought to C order, so the sums (and their rounding) do not depend on the
    layout of a read-only ``params`` array.
    """
    rows = np.ascontiguousarray(a, dtype=np.float64).reshape(n_units, a.size // n_units if n_units else 0)
    return np.sqrt(np.einsum("ij,ij->i", rows, rows))


def adaptive_grad_clip(gradients, params, clipping=0.01, eps=1e-3):
    """Unit-wise adaptive gradient clipping, in place on ``gradients``; returns ``gradients``.

    A unit is a row along axis 0 of an array with ``ndim > 1`` (an output unit of a
    ``(out, in, ...)`` weight; the norm runs over all other axes) and the whole array when
    ``ndim <= 1``. For every unit, with ``W`` its parameters and ``G`` its gradient::

        max_norm = clipping * max(||W||, eps)
        if ||G|| > max_norm:  G *= max_norm / max(||G||, 1e-6)

    Norms and the factor are computed in float64 (float32 arrays are converted with
    ``astype``); the factor is rounded once to the array's dtype and multiplies the unit.
    Units that are not clipped are not written. A NaN norm never triggers clipping, so NaN
    gradients pass through unchanged.

    Note that a ``(n, 1)`` bias (the original design's ``b{l}`` layout) has ``n`` one-element units;
    pass biases as 1-D arrays to clip them as one unit.
    """
    fn = "adaptive_grad_clip"
    dtype = _validate.params_and_grads(fn, gradients, params, "gradients", "params")
    clipping = _validate.number(fn, "clipping", clipping, lo=0.0)
    eps = _validate.number(fn, "eps", eps, lo=0.0)
    _validate.no_overlaps(
        fn,
        [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        [(f"params[{k!r}]", p) for k, p in params.items()],
    )
    if dtype is None:
        return gradients
    with np.errstate(all="ignore"):
        for key, g in gradients.items():
            n_units = g.shape[0] if g.ndim > 1 else 1
            w_norm = _unit_norms(params[key], n_units)
            g_norm = _unit_norms(g, n_units)
            max_norm = clipping * np.maximum(w_norm, eps)
            clip = g_norm > max_norm
            if clip.any():
                factor = (max_norm[clip] / np.maximum(g_norm[clip], _GRAD_NORM_FLOOR)).astype(g.dtype)
                rows = g.reshape(n_units, g.size // n_units)
                rows[clip] *= factor[:, None]
    return gradients


class AdaptiveClipper(AdaptiveClipperBase):
    __doc__ = AdaptiveClipperBase.__doc__

    def _clip(self, fn, gradients):
        grads, _ = _validate.float_dict(fn, "gradients", gradients)
        norms = {key: vector_norm(g) for key, g in grads.items()}
        finite = [n for n in norms.values() if math.isfinite(n)]
        if finite:
            r = self.adaptation_rate
            self.running_max = (1.0 - r) * self.running_max + r * max(finite)
            self.running_weight = (1.0 - r) * self.running_weight + r
        clip = self.clip_value
        out = {}
        for key, g in grads.items():
            n = norms[key]
            if math.isfinite(n) and n > clip:
                with np.errstate(all="ignore"):
                    out[key] = np.multiply(g, g.dtype.type(clip / n), order="C")
            else:
                out[key] = g
        return out
