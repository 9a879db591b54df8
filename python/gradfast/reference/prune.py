"""Reference magnitude pruning (the original design's percentile rule), masks, and gradual pruning."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate
from .._base import prune as _base


def _threshold(magnitudes: np.ndarray, ratio: float) -> float:
    """``np.percentile(magnitudes, 100 * ratio)`` of a non-empty float64 array.

    numpy's default 'linear' method, spelled out for ports: ``q = (100 * ratio) / 100``,
    ``a`` sorted ascending, ``v = (n - 1) * q``; if ``v >= n - 1`` then ``i = j = n - 1`` and
    ``g = v + 1``, else ``i = floor(v)``, ``j = i + 1``, ``g = v - i``; with ``d = a[j] - a[i]``
    the result is ``a[j] - d * (1 - g)`` when ``g >= 0.5``, else ``a[i] + d * g``. A NaN
    anywhere makes it NaN; so does interpolating into infinity (``inf * 0``).
    """
    with np.errstate(invalid="ignore"):  # inf - inf: the NaN is the defined result
        return float(np.percentile(magnitudes, 100.0 * ratio))


def _thresholds(magnitudes: dict, ratio: float, is_global: bool) -> list:
    """The threshold of each array (``None`` for an empty one), per array or over all of them."""
    if is_global:
        every = np.concatenate([m.ravel() for m in magnitudes.values()]) if magnitudes else np.empty(0)
        t = _threshold(every, ratio) if every.size else None
        return [t if m.size else None for m in magnitudes.values()]
    return [_threshold(m, ratio) if m.size else None for m in magnitudes.values()]


def _magnitudes(weights) -> dict:
    # float64 magnitudes: exact for both dtypes, so the threshold arithmetic is one precision
    return {key: np.abs(np.asarray(w, dtype=np.float64)) for key, w in weights.items()}


def _keep(magnitude: np.ndarray, threshold) -> np.ndarray:
    """``magnitude > threshold`` (all False for an empty array or a NaN threshold), as an
    array even for a 0-d ``magnitude``."""
    out = np.empty(magnitude.shape, dtype=bool)
    return np.greater(magnitude, math.nan if threshold is None else threshold, out=out)


def prune_network(weights, prune_ratio=0.3, *, scope="layer"):
    """Magnitude pruning: a new dict of new arrays where ``|w| <= threshold`` is set to 0.

    ``threshold = np.percentile(|w|, 100 * prune_ratio)``, computed on the magnitudes in
    float64 (see ``_threshold``), per array for ``scope='layer'`` (the original code) or once over all
    arrays' magnitudes together for ``scope='global'``. A weight is kept iff ``|w| > threshold``
    (strictly), so ties at the threshold are pruned together: the realized sparsity can exceed
    ``prune_ratio``, ``prune_ratio=0`` still prunes the weights of smallest magnitude and
    ``prune_ratio=1`` prunes everything. Kept weights are copied bit for bit, pruned ones are
    ``+0.0``; results are C-contiguous and ``weights`` is not modified (any layout is read).
    Each array's sparsity is logged at INFO on the ``"gradfast"`` logger (the original code printed it).

    NaN policy (``np.percentile``'s): a NaN weight makes its array's threshold NaN (with
    ``scope='global'``, every array's), and a NaN threshold keeps nothing: the whole array is
    pruned, and a WARNING is logged.
    """
    fn = "prune_network"
    weights, _ = _validate.float_dict(fn, "weights", weights)
    ratio = _base.fraction(fn, "prune_ratio", prune_ratio)
    is_global = _base.scope_is_global(fn, scope)
    mags = _magnitudes(weights)
    thresholds = _thresholds(mags, ratio, is_global)
    pruned = {}
    for (key, w), threshold in zip(weights.items(), thresholds):
        out = np.zeros(w.shape, dtype=w.dtype)
        np.copyto(out, w, where=_keep(mags[key], threshold))
        pruned[key] = out
    _base.log_pruned(fn, pruned, thresholds)
    return pruned


def magnitude_masks(weights, sparsity, *, scope="layer"):
    """Masks of the weights ``prune_network(weights, sparsity, scope=scope)`` keeps.

    A new dict of new C-contiguous bool arrays of the weights' shapes, ``True`` where
    ``|w| > np.percentile(|w|, 100 * sparsity)``: exactly ``prune_network``'s rule, ties and
    NaN policy included (a NaN threshold gives an all-False mask). ``weights`` is only read.
    """
    fn = "magnitude_masks"
    weights, _ = _validate.float_dict(fn, "weights", weights)
    ratio = _base.fraction(fn, "sparsity", sparsity)
    is_global = _base.scope_is_global(fn, scope)
    mags = _magnitudes(weights)
    thresholds = _thresholds(mags, ratio, is_global)
    return {key: _keep(mags[key], t) for key, t in zip(weights, thresholds)}


def _check_masks(fn: str, params, masks, *, writeable: bool = False) -> None:
    """``masks``: bool arrays under exactly the keys of ``params``, of their shapes."""
    masks = _validate.array_dict(fn, "masks", masks)
    _validate.matching_keys(fn, "masks", masks, "params", params)
    for key, p in params.items():
        m = _validate.ndarray(fn, f"masks[{key!r}]", masks[key])
        if m.dtype != np.bool_:
            raise TypeError(f"{fn}: masks[{key!r}] must have dtype bool, got {m.dtype}")
        _validate.same_shape(fn, f"masks[{key!r}]", m, p.shape)
        if writeable and not (m.flags.c_contiguous and m.flags.writeable):
            raise ValueError(f"{fn}: masks[{key!r}] must be C-contiguous and writeable, got {_layout(m)}")


def _layout(a: np.ndarray) -> str:
    return "a read-only array" if a.flags.c_contiguous else "a non-contiguous array"


def _params(fn: str, params):
    """A dict of float arrays of one dtype, each C-contiguous and writeable."""
    params = _validate.array_dict(fn, "params", params)
    dtype = None
    for key, p in params.items():
        _validate.float_array(fn, f"params[{key!r}]", p, writeable=True)
        dtype = dtype or p.dtype
        _validate.same_dtype(fn, f"params[{key!r}]", p, dtype)
    return params


def apply_masks(params, masks):
    """Sets ``params`` to ``+0.0`` where ``masks`` is False, in place; returns ``params``.

    ``masks`` holds a bool array of each parameter's shape under exactly its keys (as
    ``magnitude_masks`` and ``GradualPruning.masks`` give them); any layout is read. Pruned
    entries become exactly ``+0.0``, NaN and ``-0.0`` included; kept ones are not touched.
    """
    fn = "apply_masks"
    params = _params(fn, params)
    _check_masks(fn, params, masks)
    _validate.no_overlaps(
        fn, [(f"params[{k!r}]", p) for k, p in params.items()], [(f"masks[{k!r}]", m) for k, m in masks.items()]
    )
    for key, p in params.items():
        np.copyto(p, 0.0, where=~masks[key])
    return params


class GradualPruning(_base.GradualPruning):
    __doc__ = _base.GradualPruning.__doc__

    def _prune(self, fn, params, masks, sparsity, is_global):
        params = _params(fn, params)
        _check_masks(fn, params, masks, writeable=True)
        written = [(f"params[{k!r}]", p) for k, p in params.items()]
        written += [(f"masks[{k!r}]", m) for k, m in masks.items()]
        _validate.no_overlaps(fn, written)
        for key, p in params.items():
            np.copyto(p, 0.0, where=~masks[key])
        mags = _magnitudes(params)
        thresholds = _thresholds(mags, sparsity, is_global)
        for (key, p), t in zip(params.items(), thresholds):
            m = masks[key]
            np.logical_and(m, _keep(mags[key], t), out=m)
            np.copyto(p, 0.0, where=~m)
        return thresholds
