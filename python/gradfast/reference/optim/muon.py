"""Reference Muon: ``torch.optim.Muon``'s single-tensor step operation by operation.

The Newton-Schulz iteration runs on float32 values; with ``ns_dtype='bfloat16'`` each of
torch's bfloat16 results (the input, its norm, the normalised input, every product and sum of
``addmm``) is rounded to bfloat16 once, products summed in float32 as torch's CPU bfloat16
GEMM does.
"""

from __future__ import annotations

import numpy as np

from ... import _validate
from ..._base.optim import MuonBase
from ..._base.optim.muon import adjusted_lr
from ._lerp import lerp_


def newton_schulz(u: np.ndarray, coefficients, steps: int, eps: float, bf16: bool) -> np.ndarray:
    """torch's ``_zeropower_via_newtonschulz`` on the float32 values of ``u`` (a matrix);
    returns a float32 matrix (of bfloat16 values when ``bf16``)."""

    def r(x):
        x = np.asarray(x, np.float32)  # float64 goes through float32, as torch's conversion
        return x.astype(_validate.bf16()).astype(np.float32) if bf16 else x

    a, b, c = coefficients
    x = r(u)
    tall = u.shape[0] > u.shape[1]
    if tall:
        x = x.T
    x64 = x.astype(np.float64)
    norm = r(np.asarray(np.sqrt(np.sum(x64 * x64))))
    x = r(x / np.maximum(norm, r(np.asarray(eps))))
    fa, fb, fc = (np.float32(v) for v in (a, b, c))
    for _ in range(steps):
        gram = r(x @ x.T)
        h = r(fb * gram + fc * (gram @ gram))
        x = r(fa * x + h @ x)
    return np.ascontiguousarray(x.T if tall else x)


class Muon(MuonBase):
    __doc__ = MuonBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        bf16 = self.ns_dtype == "bfloat16"
        with np.errstate(all="ignore"):
            for key, p in params.items():
                g, buf = gradients[key], state[key]["momentum_buffer"]
                t = p.dtype.type
                lerp_(buf, g, 1 - self.momentum)
                if self.nesterov:
                    u = g.copy()
                    lerp_(u, buf, self.momentum)
                else:
                    u = buf
                x = newton_schulz(u, self.ns_coefficients, self.ns_steps, self.epsilon, bf16)
                lr_adj = adjusted_lr(self.learning_rate, self.adjust_lr_fn, p.shape)
                p *= t(1 - self.learning_rate * self.weight_decay)
                p += t(-lr_adj) * x.astype(p.dtype)
