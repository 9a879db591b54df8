"""Reference Adam/AdamW, momentum and global-norm clipping, in plain NumPy.

The arithmetic follows PyTorch's single-tensor CPU code operation by operation
(``torch.optim.Adam``/``AdamW`` with ``foreach=False``, ``torch.nn.utils.clip_grad_norm_``):
scalars are formed in float64 and rounded once to the array's dtype, element-wise work is
done in the array's dtype. NaN and inf propagate as they do in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks
from ._optimizer import Hyper, Optimizer


def _adam_arrays(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step on one array, in place on ``p``, ``m``, ``v`` (and ``vmax``)."""
    t = p.dtype.type
    with np.errstate(all="ignore"):
        if weight_decay != 0.0:
            if decoupled:
                p *= t(1.0 - lr * weight_decay)
            else:
                g = g + t(weight_decay) * p
        # m.lerp_(g, 1 - beta1), with lerp's two branches as in ATen
        w = t(1.0 - beta1)
        if w < 0.5:
            m += w * (g - m)
        else:
            m[...] = g - (g - m) * (t(1) - w)
        v *= t(beta2)
        v += (t(1.0 - beta2) * g) * g
        src = v
        if vmax is not None:
            np.maximum(vmax, v, out=vmax)
            src = vmax
        step_size = lr / (1.0 - beta1**step)
        bc2_sqrt = math.sqrt(1.0 - beta2**step)
        denom = np.sqrt(src) / t(bc2_sqrt) + t(eps)
        p += (t(-step_size) * m) / denom  # addcdiv: self + value * t1 / t2, left to right


def _adam_hypers(fn, learning_rate, beta1, beta2, epsilon, weight_decay=0.0):
    return (
        _checks.number(fn, "learning_rate", learning_rate, lo=0.0),
        _checks.number(fn, "beta1", beta1, lo=0.0, hi=1.0, hi_open=True),
        _checks.number(fn, "beta2", beta2, lo=0.0, hi=1.0, hi_open=True),
        _checks.number(fn, "epsilon", epsilon, lo=0.0),
        _checks.number(fn, "weight_decay", weight_decay, lo=0.0),
    )


def adam_optimizer(params, gradients, state, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """The seed's functional Adam: one array, ``state`` holds ``m``, ``v`` and the step ``t``.

    Updates ``params`` and ``state['m']``, ``state['v']`` in place (the state arrays are
    created on the first call) and returns ``(params, state)``. Same numbers as
    ``torch.optim.Adam`` without weight decay.
    """
    fn = "adam_optimizer"
    _checks.float_array(fn, "params", params, writeable=True)
    _checks.float_array(fn, "gradients", gradients)
    _checks.same_dtype(fn, "gradients", gradients, params.dtype)
    _checks.same_shape(fn, "gradients", gradients, params.shape)
    _checks.no_alias(fn, "params", params, "gradients", gradients)
    if not isinstance(state, dict):
        raise TypeError(f"{fn}: state must be a dict, got {type(state).__name__}")
    lr, b1, b2, eps, _ = _adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    if "m" in state:
        for slot in ("m", "v"):
            if slot not in state:
                raise ValueError(f"{fn}: state must have key {slot!r} alongside 'm', got it missing")
            a = _checks.float_array(fn, f"state[{slot!r}]", state[slot], writeable=True)
            _checks.same_dtype(fn, f"state[{slot!r}]", a, params.dtype)
            _checks.same_shape(fn, f"state[{slot!r}]", a, params.shape)
            for other, o in (("params", params), ("gradients", gradients)):
                _checks.no_alias(fn, f"state[{slot!r}]", a, other, o)
        _checks.no_alias(fn, "state['m']", state["m"], "state['v']", state["v"])
        t = _checks.integer(fn, "state['t']", state.get("t"), lo=0) + 1
    else:
        state["m"] = np.zeros_like(params, order="C")
        state["v"] = np.zeros_like(params, order="C")
        t = 1
    _adam_arrays(params, gradients, state["m"], state["v"], None, t, lr, b1, b2, eps, 0.0, False)
    state["t"] = t
    return params, state


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) over a dict of arrays, in place.

    Matches ``torch.optim.Adam`` step for step; with ``decoupled=True`` the weight decay is
    AdamW's (Loshchilov and Hutter, 2019) and matches ``torch.optim.AdamW``. With
    ``amsgrad=True`` the maximum of the second moments is kept, as in PyTorch.
    State slots per parameter: ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).
    """

    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "decoupled", "amsgrad")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    decoupled = Hyper(flag=True)
    amsgrad = Hyper(flag=True)

    def __init__(
        self,
        learning_rate=1e-3,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        weight_decay=0.0,
        *,
        decoupled=False,
        amsgrad=False,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay, self.decoupled, self.amsgrad = weight_decay, decoupled, amsgrad

    @property
    def slots(self):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg", "exp_avg_sq")

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p in params.items():
            s = state[key]
            _adam_arrays(
                p, gradients[key], s["exp_avg"], s["exp_avg_sq"], s.get("max_exp_avg_sq"), step,
                self.learning_rate, self.beta1, self.beta2, self.epsilon, self.weight_decay, self.decoupled,
            )


class AdamW(Adam):
    """Adam with decoupled weight decay; matches ``torch.optim.AdamW`` (default decay 0.01)."""

    def __init__(
        self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, *, amsgrad=False
    ):
        super().__init__(learning_rate, beta1, beta2, epsilon, weight_decay, decoupled=True, amsgrad=amsgrad)


class MomentumOptimizer(Optimizer):
    """The seed's momentum rule, in place: ``v = momentum*v - lr*g``, then
    ``p += v`` (classical) or ``p += momentum*v - lr*g`` (Nesterov).

    The velocities are the ``velocity`` state slot, also readable as ``velocities``.
    """

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "nesterov")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    nesterov = Hyper(flag=True)

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False) -> None:
        super().__init__(learning_rate)
        self.momentum, self.nesterov = momentum, nesterov

    @property
    def velocities(self) -> dict[str, np.ndarray]:
        return {k: s["velocity"] for k, s in self.state.items()}

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p in params.items():
            t = p.dtype.type
            g, v = gradients[key], state[key]["velocity"]
            mu, lr = t(self.momentum), t(self.learning_rate)
            with np.errstate(all="ignore"):
                v[...] = mu * v - lr * g
                if self.nesterov:
                    p += mu * v - lr * g
                else:
                    p += v


def _norm_type(fn, norm_type) -> float:
    if norm_type == math.inf:
        return math.inf
    return _checks.number(fn, "norm_type", norm_type, lo=0.0, lo_open=True)


def clip_grad_norm(gradients, max_norm, norm_type=2.0, *, error_if_nonfinite=False):
    """Scale all gradients in place so that their global norm is at most ``max_norm``.

    The global norm is the ``norm_type``-norm of the per-array norms (``inf``: the largest
    absolute value), accumulated in float64. The scale is ``min(1, max_norm / (norm + 1e-6))``
    and is applied to every array, as ``torch.nn.utils.clip_grad_norm_`` does. Returns the
    global norm before clipping. With ``error_if_nonfinite=True`` a NaN or infinite norm
    raises ``ValueError`` and nothing is changed.
    """
    fn = "clip_grad_norm"
    grads = _checks.array_dict(fn, "gradients", gradients)
    max_norm = _checks.number(fn, "max_norm", max_norm, lo=0.0)
    p = _norm_type(fn, norm_type)
    dtype = None
    items = list(grads.items())
    for key, g in items:
        _checks.float_array(fn, f"gradients[{key!r}]", g, writeable=True)
        dtype = dtype or g.dtype
        _checks.same_dtype(fn, f"gradients[{key!r}]", g, dtype)
    _checks.no_overlaps(fn, [(f"gradients[{k!r}]", g) for k, g in items])
    if not items:
        return 0.0
    with np.errstate(all="ignore"):
        norms = []
        for _, g in items:
            a = np.abs(g.astype(np.float64).ravel())
            if a.size == 0:
                norms.append(0.0)
            elif p == math.inf:
                norms.append(float(np.max(a)))
            elif p == 2.0:
                norms.append(math.sqrt(float(np.dot(a, a))))
            else:
                norms.append(float(np.sum(a**p)) ** (1.0 / p))
        n = np.array(norms)
        total = float(np.max(n)) if p == math.inf else float(np.sum(n**p)) ** (1.0 / p)
        if error_if_nonfinite and not math.isfinite(total):
            raise ValueError(
                f"{fn}: gradients must have a finite total norm of order {norm_type} when "
                f"error_if_nonfinite=True, got {total}"
            )
        coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
        for _, g in items:
            g *= g.dtype.type(coef)
    return total
