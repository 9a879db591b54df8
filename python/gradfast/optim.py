"""Rust-backed optimizers: the reference classes with their arithmetic done by ``_core``.

State handling, hyper-parameter checks, ``state_dict`` and ``load_state_dict`` are the
reference's (``gradfast.reference.optim``); each step is one call into Rust that validates
every array of the dict, then updates them all in one fused pass with the GIL released.
"""

from __future__ import annotations

from . import _core
from .reference import _checks
from .reference import optim as _ref


class Adam(_ref.Adam):
    __doc__ = _ref.Adam.__doc__

    def update(self, params, gradients):
        """Apply one step in place to ``params``; returns ``params``."""
        packed, state = self._packed, self.state
        if packed is None or not state:
            return super().update(params, gradients)
        _core.adam(self._update_name, params, gradients, state, self.step + 1, *packed)
        self.step += 1
        return params

    def _apply(self, params, gradients, state, step):
        _core.adam(self._update_name, params, gradients, state, step, *self._hyper_values)


class AdamW(Adam, _ref.AdamW):
    __doc__ = _ref.AdamW.__doc__


class MomentumOptimizer(_ref.MomentumOptimizer):
    __doc__ = _ref.MomentumOptimizer.__doc__

    def update(self, params, gradients):
        """Apply one step in place to ``params``; returns ``params``."""
        packed, state = self._packed, self.state
        if packed is None or not state:
            return super().update(params, gradients)
        _core.momentum(self._update_name, params, gradients, state, *packed)
        self.step += 1
        return params

    def _apply(self, params, gradients, state, step):
        _core.momentum(self._update_name, params, gradients, state, *self._hyper_values)


def adam_optimizer(params, gradients, state, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    fn = "adam_optimizer"
    if not isinstance(state, dict):
        raise TypeError(f"{fn}: state must be a dict, got {type(state).__name__}")
    lr, b1, b2, eps, _ = _ref._adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    if "m" in state:
        if "v" not in state:
            raise ValueError(f"{fn}: state must have key 'v' alongside 'm', got it missing")
        t = _checks.integer(fn, "state['t']", state.get("t"), lo=0) + 1
        _core.adam_array(fn, params, gradients, state["m"], state["v"], t, lr, b1, b2, eps)
    else:
        # Fresh state joins the dict only once the step has succeeded.
        _checks.float_array(fn, "params", params, writeable=True)
        m, v = _checks.zeros_like(params), _checks.zeros_like(params)
        _core.adam_array(fn, params, gradients, m, v, 1, lr, b1, b2, eps)
        state["m"], state["v"], t = m, v, 1
    state["t"] = t
    return params, state


adam_optimizer.__doc__ = _ref.adam_optimizer.__doc__


def clip_grad_norm(gradients, max_norm, norm_type=2.0, *, error_if_nonfinite=False):
    fn = "clip_grad_norm"
    max_norm = _checks.number(fn, "max_norm", max_norm, lo=0.0)
    p = _ref._norm_type(fn, norm_type)
    return _core.clip_grad_norm(fn, gradients, max_norm, p, error_if_nonfinite)


clip_grad_norm.__doc__ = _ref.clip_grad_norm.__doc__
