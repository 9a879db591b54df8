"""Rust-backed elastic-net regularization: penalty and gradients of a whole dict in one call,
one pass over each array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from .reference import regularization as _ref


def compute_regularization(
    weights: Mapping[Any, np.ndarray], lambda_l1: float = 0.01, lambda_l2: float = 0.01
) -> tuple[float, dict[Any, np.ndarray]]:
    fn = "compute_regularization"
    l1 = _validate.number(fn, "lambda_l1", lambda_l1, lo=0.0)
    l2 = _validate.number(fn, "lambda_l2", lambda_l2, lo=0.0)
    return _core.compute_regularization(fn, weights, l1, l2)


compute_regularization.__doc__ = _ref.compute_regularization.__doc__
