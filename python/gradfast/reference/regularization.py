"""Reference elastic-net regularization (the original design's L1 + L2 penalty and its gradient)."""

from __future__ import annotations

import numpy as np

from .. import _validate


def compute_regularization(weights, lambda_l1=0.01, lambda_l2=0.01):
    """Elastic-net penalty and its gradient: returns ``(penalty, reg_gradients)``.

    ``penalty = lambda_l1 * sum |w| + lambda_l2 * sum w**2`` over every array of ``weights``,
    a Python float: each array's sums are accumulated in float64, then added over the dict in
    its order. ``reg_gradients[key] = lambda_l1 * sign(w) + (2 * lambda_l2) * w`` is a new
    C-contiguous array of ``w``'s dtype (scalars rounded once to it), with ``sign(0) = 0``: at
    zero the L1 term contributes its subgradient 0. ``weights`` is not modified (any layout).
    Both lambdas are finite and >= 0. NaN and inf propagate.
    """
    fn = "compute_regularization"
    l1 = _validate.number(fn, "lambda_l1", lambda_l1, lo=0.0)
    l2 = _validate.number(fn, "lambda_l2", lambda_l2, lo=0.0)
    weights, _ = _validate.float_dict(fn, "weights", weights)
    abs_sum = 0.0
    sq_sum = 0.0
    grads = {}
    with np.errstate(all="ignore"):
        for key, w in weights.items():
            t = w.dtype.type
            w64 = np.asarray(w, dtype=np.float64).ravel()
            abs_sum += float(np.sum(np.abs(w64)))
            sq_sum += float(np.dot(w64, w64))
            g = np.sign(w, order="C")
            g *= t(l1)
            g += t(2.0 * l2) * w
            grads[key] = g
    return l1 * abs_sum + l2 * sq_sum, grads
