"""Reference schedule-free AdamW: ``schedulefree.AdamWScheduleFree``'s single-tensor path
operation by operation (scalars in float64 rounded once to the array's dtype; ``lerp`` with
ATen's two branches; ``add(x, alpha=a)`` as ``self + a * x``)."""

from __future__ import annotations

import numpy as np

from ..._base.optim import ScheduleFreeAdamWBase
from ._lerp import lerp_


def _schedule_free_arrays(y, g, z, v, lr, beta1, beta2, eps, weight_decay, ckp1, bias_correction2):
    """One step on one array, in place on ``y``, ``z`` and ``v``."""
    t = y.dtype.type
    with np.errstate(all="ignore"):
        v *= t(beta2)
        v += (t(1.0 - beta2) * g) * g
        denom = np.sqrt(v / t(bias_correction2)) + t(eps)
        u = g / denom
        if weight_decay != 0.0:
            u += t(weight_decay) * y
        lerp_(y, z, ckp1)
        y += t(lr * (beta1 * (1.0 - ckp1) - 1.0)) * u
        z += t(-lr) * u


class ScheduleFreeAdamW(ScheduleFreeAdamWBase):
    __doc__ = ScheduleFreeAdamWBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_train_mode()
        self._check_state(f"{self._name}.update", params, gradients, state)
        lr, lr_max, weight_sum, ckp1 = self._schedule(step)
        bias_correction2 = 1.0 - self.beta2**step
        for key, p in params.items():
            s = state[key]
            _schedule_free_arrays(
                p,
                gradients[key],
                s["z"],
                s["exp_avg_sq"],
                lr,
                self.beta1,
                self.beta2,
                self.epsilon,
                self.weight_decay,
                ckp1,
                bias_correction2,
            )
        self._schedule_sums = (lr_max, weight_sum)

    def _lerp_to_z(self, fn, params, weight):
        with np.errstate(all="ignore"):
            for key, p in params.items():
                lerp_(p, self.state[key]["z"], weight)
