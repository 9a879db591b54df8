"""Rust-backed magnitude pruning: the exact percentile threshold found by selection, not sorting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core
from ._base import prune as _base
from .reference import prune as _ref


def prune_network(weights: Mapping[Any, np.ndarray], prune_ratio: float = 0.3, *, scope: str = "layer"):
    fn = "prune_network"
    ratio = _base.fraction(fn, "prune_ratio", prune_ratio)
    is_global = _base.scope_is_global(fn, scope)
    pruned, thresholds = _core.prune_network(fn, weights, ratio, is_global)
    _base.log_pruned(fn, pruned, thresholds)
    return pruned


def magnitude_masks(weights: Mapping[Any, np.ndarray], sparsity: float, *, scope: str = "layer"):
    fn = "magnitude_masks"
    sparsity = _base.fraction(fn, "sparsity", sparsity)
    is_global = _base.scope_is_global(fn, scope)
    masks, _ = _core.magnitude_masks(fn, weights, sparsity, is_global)
    return masks


def apply_masks(params, masks):
    _core.apply_masks("apply_masks", params, masks)
    return params


class GradualPruning(_base.GradualPruning):
    __doc__ = _base.GradualPruning.__doc__
    _new_lock = _core.StepLock

    def _prune(self, fn, params, masks, sparsity, is_global):
        return _core.gradual_prune(fn, params, masks, sparsity, is_global)


_SHARED_BUFFER = """
    The arrays returned by one call are views into one buffer (one allocation instead of
    one per array, which for many small arrays costs more than the pruning): the buffer is
    freed when the last of them is.
    """

prune_network.__doc__ = (_ref.prune_network.__doc__ or "") + _SHARED_BUFFER
magnitude_masks.__doc__ = (_ref.magnitude_masks.__doc__ or "") + _SHARED_BUFFER
apply_masks.__doc__ = _ref.apply_masks.__doc__
