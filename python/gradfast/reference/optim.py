"""Reference optimizers in plain NumPy: Adam/AdamW, momentum, and the layer-wise LAMB, LARS
and the seed's LayerAdaptiveLR.

Adam's arithmetic (and LAMB's moments) follows PyTorch's single-tensor CPU code operation by operation
(``torch.optim.Adam``/``AdamW`` with ``foreach=False``):
scalars are formed in float64 and rounded once to the array's dtype, element-wise work is
done in the array's dtype. NaN and inf propagate as they do in PyTorch.

Adam and momentum also store bfloat16 (``ml_dtypes.bfloat16``) params, gradients and state:
those arrays are widened to float32, the float32 step runs on the widened copies, and the
results are rounded to nearest even (ml_dtypes' cast) once, when written back. So the
update of the params uses the state before its rounding, exactly as the Rust kernels do.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate
from .._base.optim import AdamBase, AdamWBase, LAMBBase, LARSBase, LayerAdaptiveLRBase, MomentumBase, adam_hypers
from .clip import vector_norm


def _widened(arrays):
    """float32 working copies of the bfloat16 arrays among ``arrays`` (None stays None)."""
    return [a.astype(np.float32) if a is not None and _validate.is_bf16(a.dtype) else a for a in arrays]


def _store(arrays, work) -> None:
    """Round the float32 results of ``work`` into the bfloat16 arrays they were widened from."""
    with np.errstate(all="ignore"):  # a NaN propagates, as in the arithmetic, without a warning
        for a, w in zip(arrays, work):
            if w is not a:
                a[...] = w


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
    """The seed's functional Adam: one array, ``state`` holds ``m``, ``v`` and the step ``t``.

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
        t = _validate.integer(fn, "state['t']", state.get("t"), lo=0) + 1
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
        for key, p in params.items():
            s = state[key]
            written = [p, s["exp_avg"], s["exp_avg_sq"], s.get("max_exp_avg_sq")]
            work = _widened(written)
            (g,) = _widened([gradients[key]])
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
            _store(written, work)


class AdamW(AdamWBase, Adam):
    __doc__ = AdamWBase.__doc__


class MomentumOptimizer(MomentumBase):
    __doc__ = MomentumBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p_stored in params.items():
            written = [p_stored, state[key]["velocity"]]
            p, v = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            mu, lr = t(self.momentum), t(self.learning_rate)
            with np.errstate(all="ignore"):
                v[...] = mu * v - lr * g
                if self.nesterov:
                    p += mu * v - lr * g
                else:
                    p += v
            _store(written, [p, v])


class LayerAdaptiveLR(LayerAdaptiveLRBase):
    __doc__ = LayerAdaptiveLRBase.__doc__

    def _advance(self, fn, params, gradients, write):
        state, steps = self._next(gradients)
        out = {}
        for key, g in gradients.items():
            sq = state[key]["square_avg"]
            t = sq.dtype.type
            with np.errstate(all="ignore"):
                sq *= t(self.beta)
                sq += t(1.0 - self.beta) * (g * g)
                corrected = sq / t(1.0 - self.beta ** steps[key])
                # np.asarray: a 0-d layer gives a 0-d array, not a NumPy scalar
                rate = np.asarray(t(self.learning_rate) / (np.sqrt(corrected) + t(self.epsilon)))
                if write == "rates":
                    out[key] = rate
                elif write == "stepped":
                    p = params[key]
                    out[key] = np.subtract(p, rate * g, out=np.empty(p.shape, p.dtype))
                else:
                    p = params[key]  # in place, never through the mapping's item assignment
                    p -= rate * g
        self.state, self.layer_steps = state, steps
        if write != "rates":
            self.step += 1
        return out


class LAMB(LAMBBase):
    __doc__ = LAMBBase.__doc__

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        # the bias corrections as factors: one division per element
        inv_bc1 = 1.0 / (1.0 - self.beta1**step)
        inv_bc2_sqrt = 1.0 / math.sqrt(1.0 - self.beta2**step)
        for key, p in params.items():
            g, m, v = gradients[key], state[key]["exp_avg"], state[key]["exp_avg_sq"]
            t = p.dtype.type
            with np.errstate(all="ignore"):
                _adam_moments(g, m, v, self.beta1, self.beta2)
                r = (m * t(inv_bc1)) / (np.sqrt(v) * t(inv_bc2_sqrt) + t(self.epsilon))
                if self.weight_decay != 0.0:
                    r += t(self.weight_decay) * p
                p_norm, r_norm = vector_norm(p), vector_norm(r)
                trust = p_norm / r_norm if p_norm > 0.0 and r_norm > 0.0 else 1.0
                p -= t(self.learning_rate * trust) * r


class LARS(LARSBase):
    __doc__ = LARSBase.__doc__

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        for key, p in params.items():
            g, v = gradients[key], state[key]["velocity"]
            t = p.dtype.type
            with np.errstate(all="ignore"):
                p_norm, g_norm = vector_norm(p), vector_norm(g)
                if p_norm > 0.0 and g_norm > 0.0:
                    denom = g_norm + self.weight_decay * p_norm + self.epsilon
                    local_lr = self.trust_coefficient * p_norm / denom
                else:
                    local_lr = 1.0
                d = g + t(self.weight_decay) * p if self.weight_decay != 0.0 else g
                v *= t(self.momentum)
                v += t(self.learning_rate * local_lr) * d
                p -= v
