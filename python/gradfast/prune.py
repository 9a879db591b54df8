"""Rust-backed magnitude pruning: the exact percentile threshold found by selection, not sorting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core
from ._base import prune as _base


def prune_network(weights: Mapping[Any, np.ndarray], prune_ratio: float = 0.3, *, scope: str = "layer"):
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

    The arrays returned by one call are views into one buffer (one allocation instead of
    one per array, which for many small arrays costs more than the pruning): the buffer is
    freed when the last of them is.
    """
    fn = "prune_network"
    hyper = _core.PruneHyper(
        sparsity=_base.fraction(fn, "prune_ratio", prune_ratio), global_scope=_base.scope_is_global(fn, scope)
    )
    pruned, thresholds = _core.prune_network(fn, weights, hyper)
    _base.log_pruned(fn, pruned, thresholds)
    return pruned


def magnitude_masks(weights: Mapping[Any, np.ndarray], sparsity: float, *, scope: str = "layer"):
    """Masks of the weights ``prune_network(weights, sparsity, scope=scope)`` keeps.

    A new dict of new C-contiguous bool arrays of the weights' shapes, ``True`` where
    ``|w| > np.percentile(|w|, 100 * sparsity)``: exactly ``prune_network``'s rule, ties and
    NaN policy included (a NaN threshold gives an all-False mask). ``weights`` is only read.

    The arrays returned by one call are views into one buffer (one allocation instead of
    one per array, which for many small arrays costs more than the pruning): the buffer is
    freed when the last of them is.
    """
    fn = "magnitude_masks"
    hyper = _core.PruneHyper(
        sparsity=_base.fraction(fn, "sparsity", sparsity), global_scope=_base.scope_is_global(fn, scope)
    )
    masks, _ = _core.magnitude_masks(fn, weights, hyper)
    return masks


def apply_masks(params, masks):
    """Sets ``params`` to ``+0.0`` where ``masks`` is False, in place; returns ``params``.

    ``masks`` holds a bool array of each parameter's shape under exactly its keys (as
    ``magnitude_masks`` and ``GradualPruning.masks`` give them); any layout is read. Pruned
    entries become exactly ``+0.0``, NaN and ``-0.0`` included; kept ones are not touched.
    """
    _core.apply_masks("apply_masks", params, masks)
    return params


class GradualPruning(_base.GradualPruning):
    __doc__ = _base.GradualPruning.__doc__
    _new_lock = _core.StepLock

    def _prune(self, fn, params, masks, sparsity, is_global):
        return _core.gradual_prune(fn, params, masks, _core.PruneHyper(sparsity=sparsity, global_scope=is_global))
