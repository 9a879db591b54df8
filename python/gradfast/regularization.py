"""Rust-backed elastic-net regularization: penalty and gradients of a whole dict in one call,
one pass over each array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate


def compute_regularization(
    weights: Mapping[Any, np.ndarray], lambda_l1: float = 0.01, lambda_l2: float = 0.01
) -> tuple[float, dict[Any, np.ndarray]]:
    """Elastic-net penalty and its gradient: returns ``(penalty, reg_gradients)``.

    ``penalty = lambda_l1 * sum |w| + lambda_l2 * sum w**2`` over every array of ``weights``,
    a Python float: each array's sums are accumulated in float64, then added over the dict in
    its order. ``reg_gradients[key] = lambda_l1 * sign(w) + (2 * lambda_l2) * w`` is a new
    C-contiguous array of ``w``'s dtype (scalars rounded once to it), with ``sign(0) = 0``: at
    zero the L1 term contributes its subgradient 0. ``weights`` is not modified (any layout).
    Both lambdas are finite and >= 0. NaN and inf propagate.
    """
    fn = "compute_regularization"
    hyper = _core.RegularizationHyper(
        lambda_l1=_validate.number(fn, "lambda_l1", lambda_l1, lo=0.0),
        lambda_l2=_validate.number(fn, "lambda_l2", lambda_l2, lo=0.0),
    )
    return _core.compute_regularization(fn, weights, hyper)
