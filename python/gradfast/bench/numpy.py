"""The NumPy baselines: each kernel as a NumPy expert writes it (in place, ``out=``,
preallocated scratch, no temporaries), the yardstick of the ``numpy`` column."""

from __future__ import annotations

import math

import numpy as np


def _scratch(params):
    """One scratch buffer per distinct shape and dtype, shared by the arrays that have it
    (for many small arrays the shared buffer stays in cache)."""
    shared, out = {}, {}
    for key, p in params.items():
        kind = (p.shape, p.dtype)
        if kind not in shared:
            shared[kind] = np.empty_like(p)
        out[key] = shared[kind]
    return out


class NumpyAdam:
    """``gradfast.Adam`` (no weight decay) as a NumPy expert writes it: 12 in-place passes per step.

    The bias corrections are folded into two scalars (Kingma and Ba's "efficient version"):
    ``p -= lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps*sqrt(bc2))``, one pass fewer than
    PyTorch's ``sqrt(v)/sqrt(bc2) + eps``; same numbers up to rounding.
    """

    weight_decay = 0.0

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8) -> None:
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.step = 0
        self.state: dict = {}

    def update(self, params, gradients):
        if not self.state:
            bufs = _scratch(params)
            self.state = {k: (np.zeros_like(p), np.zeros_like(p), bufs[k]) for k, p in params.items()}
        self.step += 1
        lr, b1, b2 = self.learning_rate, self.beta1, self.beta2
        bc2_sqrt = math.sqrt(1.0 - b2**self.step)
        step_size = lr * bc2_sqrt / (1.0 - b1**self.step)
        eps = self.epsilon * bc2_sqrt
        decay = 1.0 - lr * self.weight_decay
        for key, p in params.items():
            g = gradients[key]
            m, v, buf = self.state[key]
            if self.weight_decay:
                p *= decay
            np.subtract(g, m, out=buf)  # m += (1 - b1) * (g - m)
            buf *= 1.0 - b1
            m += buf
            v *= b2  # v += (1 - b2) * g * g
            np.multiply(g, 1.0 - b2, out=buf)
            buf *= g
            v += buf
            np.sqrt(v, out=buf)  # p -= step_size * m / (sqrt(v) + eps)
            buf += eps
            np.divide(m, buf, out=buf)
            buf *= -step_size
            p += buf
        return params


class NumpyAdamW(NumpyAdam):
    """``gradfast.AdamW``: decoupled weight decay costs one more pass, ``p *= 1 - lr*wd``."""

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01) -> None:
        super().__init__(learning_rate, beta1, beta2, epsilon)
        self.weight_decay = weight_decay


class NumpyMomentum:
    """``gradfast.MomentumOptimizer`` in place: 4 passes per step (classical), 6 (Nesterov)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False) -> None:
        self.learning_rate, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.state: dict = {}

    def update(self, params, gradients):
        if not self.state:
            bufs = _scratch(params)
            self.state = {k: (np.zeros_like(p), bufs[k]) for k, p in params.items()}
        lr, mu = self.learning_rate, self.momentum
        for key, p in params.items():
            v, buf = self.state[key]
            np.multiply(gradients[key], lr, out=buf)  # v = mu*v - lr*g
            v *= mu
            v -= buf
            if self.nesterov:  # p += mu*v - lr*g
                p -= buf
                np.multiply(v, mu, out=buf)
                p += buf
            else:
                p += v
        return params


#: elements per BLAS dot in the norm: a single float32 dot over millions of elements drifts
#: by ~1e-4 relative; chunk sums accumulated in float64 stay within ~1e-7
_NORM_CHUNK = 1 << 16


def numpy_clip_grad_norm(gradients, max_norm):
    """``gradfast.clip_grad_norm`` with the 2-norm: one read pass for the norm, then (only if
    it clips) one in-place pass to scale. Returns the norm before clipping."""
    total = numpy_total_norm(gradients)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in gradients.values():
            g *= coef
    return total


class NumpyToBfloat16:
    """float32 to bfloat16 bits (round to nearest even, NaN kept) as a NumPy expert writes it:
    in place on preallocated uint32 scratch, six passes."""

    def __init__(self, n: int) -> None:
        self.scratch = np.empty(n, np.uint32)
        self.nan = np.empty(n, bool)

    def __call__(self, x, out):
        bits, s = x.view(np.uint32), self.scratch
        np.right_shift(bits, 16, out=s)
        np.bitwise_and(s, 1, out=s)
        s += 0x7FFF
        s += bits
        s >>= 16
        np.copyto(out, s, casting="unsafe")
        np.isnan(x, out=self.nan)
        if self.nan.any():
            np.copyto(out, (bits >> 16 | 0x40).astype(np.uint16), where=self.nan)


def numpy_total_norm(gradients):
    """``gradfast.get_total_norm`` with the 2-norm: one read pass, float64 sums of chunks."""
    sum_sq = 0.0
    for g in gradients.values():
        flat = g.reshape(-1)
        for i in range(0, flat.size, _NORM_CHUNK):
            chunk = flat[i : i + _NORM_CHUNK]
            sum_sq += float(np.dot(chunk, chunk))
    return math.sqrt(sum_sq)


def numpy_clip_grad_value(gradients, clip_value):
    """``gradfast.clip_grad_value``: one in-place ``np.clip`` per array."""
    for g in gradients.values():
        c = g.dtype.type(clip_value)
        np.clip(g, -c, c, out=g)
    return gradients
