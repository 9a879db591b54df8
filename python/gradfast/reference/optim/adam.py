"""Reference Adam and AdamW, and the functional ``adam_optimizer``.

The arithmetic follows PyTorch's single-tensor CPU code operation by operation
(``torch.optim.Adam``/``AdamW`` with ``foreach=False``): scalars are formed in float64 and
rounded once to the array's dtype, element-wise work is done in the array's dtype. NaN and
inf propagate as they do in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _validate
from ..._base.optim import AdamBase, AdamWBase, adam_hypers
from ..._base.optimizer import MAX_STEP
from ._bf16 import _store, _widened, draws
from ._quant8 import load_slots, store_slots


def _adam_moments(g, m, v, beta1, beta2):
    """Adam's moment update in place, as ``exp_avg.lerp_(g, 1 - beta1)`` and
    ``exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)`` in ATen (with lerp's two branches)."""
    t = m.dtype.type
    w = t(1.0 - beta1)
    if w < 0.5:
        m += w * (g - m)
    else:
        m[...] = g - (g - m) * (t(1) - w)
    v *= t(beta2)
    v += (t(1.0 - beta2) * g) * g


def _adam_arrays(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step on one array, in place on ``p``, ``m``, ``v`` (and ``vmax``)."""
    t = p.dtype.type
    with np.errstate(all="ignore"):
        if weight_decay != 0.0:
            if decoupled:
                p *= t(1.0 - lr * weight_decay)
            else:
                g = g + t(weight_decay) * p
        _adam_moments(g, m, v, beta1, beta2)
        src = v
        if vmax is not None:
            np.maximum(vmax, v, out=vmax)
            src = vmax
        step_size = lr / (1.0 - beta1**step)
        bc2_sqrt = math.sqrt(1.0 - beta2**step)
        denom = np.sqrt(src) / t(bc2_sqrt) + t(eps)
        p += (t(-step_size) * m) / denom  # addcdiv: self + value * t1 / t2, left to right


def adam_optimizer(params, gradients, state, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """The original design's functional Adam: one array, ``state`` holds ``m``, ``v`` and the step ``t``.

    Updates ``params`` and ``state['m']``, ``state['v']`` in place (the state arrays are
    created on the first call) and returns ``(params, state)``. Same numbers as
    ``torch.optim.Adam`` without weight decay.
    """
    fn = "adam_optimizer"
    _validate.float_array(fn, "params", params, writeable=True)
    _validate.float_array(fn, "gradients", gradients)
    _validate.same_dtype(fn, "gradients", gradients, params.dtype)
    _validate.same_shape(fn, "gradients", gradients, params.shape)
    _validate.no_alias(fn, "params", params, "gradients", gradients)
    if not isinstance(state, dict):
        raise TypeError(f"{fn}: state must be a dict, got {type(state).__name__}")
    lr, b1, b2, eps, _ = adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    if "m" in state:
        for slot in ("m", "v"):
            if slot not in state:
                raise ValueError(f"{fn}: state must have key {slot!r} alongside 'm', got it missing")
            a = _validate.float_array(fn, f"state[{slot!r}]", state[slot], writeable=True)
            _validate.same_dtype(fn, f"state[{slot!r}]", a, params.dtype)
            _validate.same_shape(fn, f"state[{slot!r}]", a, params.shape)
            for other, o in (("params", params), ("gradients", gradients)):
                _validate.no_alias(fn, f"state[{slot!r}]", a, other, o)
        _validate.no_alias(fn, "state['m']", state["m"], "state['v']", state["v"])
        t = _validate.integer(fn, "state['t']", state.get("t"), lo=0, hi=MAX_STEP - 1) + 1
    else:
        state["m"] = np.zeros_like(params, order="C")
        state["v"] = np.zeros_like(params, order="C")
        t = 1
    _adam_arrays(params, gradients, state["m"], state["v"], None, t, lr, b1, b2, eps, 0.0, False)
    state["t"] = t
    return params, state


class Adam(AdamBase):
    __doc__ = AdamBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        words = draws(self, params, step)
        for key, p in params.items():
            s = state[key]
            written = [p]
            work = _widened(written) + load_slots(s, slots)
            (g,) = _widened([gradients[key]])
            if self.maximize:
                g = -g
            _adam_arrays(
                work[0],
                g,
                *work[1:],
                step,
                self.learning_rate,
                self.beta1,
                self.beta2,
                self.epsilon,
                self.weight_decay,
                self.decoupled,
            )
            _store(written, work[:1])
            store_slots(s, slots, work[1:], words[key])


class AdamW(AdamWBase, Adam):
    __doc__ = AdamWBase.__doc__
