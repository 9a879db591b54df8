"""Rust-backed optimizers: the classes of ``gradfast._base.optim`` with their arithmetic done by
``_core``. Each step is one call into Rust that validates every array of the dict, then updates
them all in one fused pass with the GIL released.
"""

from __future__ import annotations

from . import _core, _validate
from ._base.optim import AdamBase, AdamWBase, MomentumBase, adam_hypers
from .reference import optim as _ref


class Adam(AdamBase):
    __doc__ = AdamBase.__doc__

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


class AdamW(AdamWBase, Adam):
    __doc__ = AdamWBase.__doc__


class MomentumOptimizer(MomentumBase):
    __doc__ = MomentumBase.__doc__

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
    lr, b1, b2, eps, _ = adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    if "m" in state:
        if "v" not in state:
            raise ValueError(f"{fn}: state must have key 'v' alongside 'm', got it missing")
        t = _validate.integer(fn, "state['t']", state.get("t"), lo=0) + 1
        _core.adam_array(fn, params, gradients, state["m"], state["v"], t, lr, b1, b2, eps)
    else:
        # Fresh state joins the dict only once the step has succeeded.
        _validate.float_array(fn, "params", params, writeable=True)
        m, v = _validate.zeros_like(params), _validate.zeros_like(params)
        _core.adam_array(fn, params, gradients, m, v, 1, lr, b1, b2, eps)
        state["m"], state["v"], t = m, v, 1
    state["t"] = t
    return params, state


adam_optimizer.__doc__ = _ref.adam_optimizer.__doc__
